"""The sequencer set as one replicated state machine on NATS JetStream (Raft inside).

- `log`: the replicated log, a JetStream stream with three replicas; the leader's appends are
  fenced on the last position it saw, so a deposed leader's write is refused, never forked.
- `entries`: what the log holds (a kind byte, then the body): admission rounds, the start of a
  leader's term, and the batches posted to L1.
- `lease`: one leader at a time, by a key in JetStream's key-value store taken and renewed with
  compare-and-set and a TTL; a member stops acting on it as soon as its local deadline passes.
- `connect`: the NATS connection every part shares.

docs/protocol.md, "The sequencer set's log", is the exact format.
"""
