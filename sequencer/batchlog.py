"""Batches the set's log says a leader appended on L1, as a member sees them until its own L1 read
has decided them.

A leader records each batch it appended (mined) in the log (`BatchPosted`). A member that reads
such an entry before its L1 read (a few blocks behind the head, by its confirmations) has reached
the block that holds the batch keeps it as *in flight*: the tip is about to move, and its pending
transactions named there are already sent, so, should it lead now, it builds nothing until its L1
read passes that block. Then L1 decides: the batch is there (its transactions were folded as
batched, nothing to do) or it is not (a reorganisation took it out, or it was reverted): its
transactions are still pending here, and the new leader posts them itself.
"""

from __future__ import annotations

from contracts.logs import get_logger
from sequencer.builder import BuiltBatch
from sequencer.cluster.entries import BatchPosted
from sequencer.follower import Follower

log = get_logger("cluster")


def posted_entry(index: int, prev_root: bytes, built: BuiltBatch, l1_tx: bytes, l1_block: int) -> BatchPosted:
    """The log's record of `built`, appended as batch `index` on `prev_root` by L1 transaction
    `l1_tx` in block `l1_block`."""
    seqs = tuple(p.seq for p in built.included)
    return BatchPosted(index, l1_block, prev_root, built.roots[-1], l1_tx, seqs)


class LoggedBatches:
    """The batches of the log this member's L1 read has not reached yet (see the module docstring)."""

    def __init__(self, follower: Follower) -> None:
        self.follower = follower
        self.in_flight: dict[int, BatchPosted] = {}
        """Undecided batches by their index on the Rollup."""

    def note(self, entry: BatchPosted) -> None:
        """A `BatchPosted` entry applied from the log (those L1 has decided since are forgotten)."""
        self.waiting()
        if not self._decided(entry):
            self.in_flight[entry.batch_index] = entry
            log.info(
                "logged_batch_in_flight",
                index=entry.batch_index,
                l1_block=entry.l1_block,
                txs=len(entry.seqs),
                l1_read=self.follower.cursor.next_block - 1,
            )

    def waiting(self) -> bool:
        """Whether a batch of the log is still undecided (nothing is to be built on the tip until
        it is); forgets those L1 has decided."""
        for index, entry in list(self.in_flight.items()):
            if self._decided(entry):
                del self.in_flight[index]
        return bool(self.in_flight)

    def _decided(self, entry: BatchPosted) -> bool:
        """Whether the L1 read has passed the block that held `entry` (then says what it found)."""
        if self.follower.cursor.next_block <= entry.l1_block:
            return False
        batches = self.follower.chain.batches
        header = batches[entry.batch_index].header if entry.batch_index < len(batches) else None
        if header is None or (header.prev_root, header.post_root) != (entry.prev_root, entry.post_root):
            pending = {p.seq for p in self.follower.mempool.pending}
            log.info(
                "logged_batch_not_on_l1",
                index=entry.batch_index,
                l1_block=entry.l1_block,
                l1_tx="0x" + entry.l1_tx.hex(),
                txs=len(entry.seqs),
                pending_again=sum(seq in pending for seq in entry.seqs),
            )
        return True
