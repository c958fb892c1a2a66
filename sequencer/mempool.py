"""The mempool: acknowledged transactions not yet in an L1 batch, and the state they imply.

Admission runs the state machine's own rules (`stf.plan_tx`) against a *speculative view*: the
chain state plus every deposit seen on L1 plus every admitted transaction, in order, held as an
overlay dict over the chain's tree (reads only, no hashing). A transaction that passes is written
to the durable log and only then acknowledged; its writes go into the overlay, so the next
transaction from the same account sees the new nonce and balance.

When the chain moves in a way the overlay did not foresee (another sequencer's batch, a revert),
`rebase` rebuilds the overlay from the new chain state and re-plans every pending transaction;
one that no longer applies is dropped with its reason (its acknowledgement is then evidence
against us; see docs/protocol.md section 7).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sequencer.api.errors import Dropped, Malformed, Overloaded
from sequencer.logs import get_logger
from sequencer.metrics import PENDING
from sequencer.stf.codec import decode_tx, encode_tx, tx_hash
from sequencer.stf.errors import InvalidTransaction, RollupError
from sequencer.stf.state import State
from sequencer.stf.transition import plan_tx
from sequencer.stf.types import ChainConfig, Deposit, L1Context, Tx
from sequencer.store import Store

log = get_logger("mempool")

_NO_L1 = L1Context(queue_end=0, deposit_hashes={})


class OverlayTree:
    """Read-through overlay over a state tree: `get` sees writes made here first."""

    def __init__(self, base: object) -> None:
        self.base = base
        self.writes: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        """The value of `key` in the speculative view."""
        value = self.writes.get(key)
        if value is not None:
            return value
        return self.base.get(key)  # type: ignore[attr-defined, no-any-return]

    def set(self, key: bytes, value: bytes) -> None:
        """Record a speculative write."""
        self.writes[key] = value


@dataclass(frozen=True)
class PendingTx:
    """An acknowledged transaction waiting for a batch."""

    seq: int
    hash: bytes
    raw: bytes
    tx: Tx


class Mempool:
    """Pending transactions in admission order, with their speculative state."""

    def __init__(self, config: ChainConfig, store: Store, max_pending: int) -> None:
        self.config = config
        self.store = store
        self.max_pending = max_pending
        self.pending: list[PendingTx] = []
        self.hashes: set[bytes] = set()
        self.overlay = OverlayTree({})
        self.view = State(tree=self.overlay)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.pending)

    def submit(self, item: Tx | bytes) -> tuple[bytes, int]:
        """Admit a transaction: check it, log it durably, then acknowledge (hash, seq).

        Raises an `InvalidTransaction` (bad signature, nonce, balance, ...), `Malformed` or
        `Overloaded`; a refusal changes nothing. Submitting an acknowledged transaction again
        returns its first acknowledgement.
        """
        (result,) = self.submit_many([item])
        if isinstance(result, RollupError):
            raise result
        return result

    def submit_many(self, items: Sequence[Tx | bytes]) -> list[tuple[bytes, int] | RollupError]:
        """Admit several transactions in order, with ONE durable commit for all that pass.

        Each item is checked against the view that includes the items before it (so one
        request may carry an account's consecutive nonces); each gets its own result: (hash,
        seq) or the error that refused it. Nothing is acknowledged before the commit.
        """
        results: list[tuple[bytes, int] | RollupError | int] = []
        staged: list[tuple[bytes, bytes, Tx, dict[bytes, bytes]]] = []
        staged_at: dict[bytes, int] = {}
        undo: list[tuple[bytes, bytes | None]] = []  # overlay entries as they were, to roll back
        for item in items:
            try:
                if isinstance(item, bytes):
                    tx = decode_tx(item)
                    raw = item
                else:
                    tx = item
                    raw = encode_tx(tx)
                if isinstance(tx, Deposit):
                    raise Malformed("deposits enter through the L1 bridge, not the API")
                h = tx_hash(raw)
                if h in staged_at:
                    results.append(staged_at[h])
                    continue
                if h in self.hashes or self.store.has(h):
                    row = self.store.get(h)
                    assert row is not None
                    if row.status == "dropped":  # no fresh receipt for it: sign a new transaction
                        raise Dropped(f"dropped after an L1 revert: {row.reason}")
                    results.append((h, row.seq))
                    continue
                if len(self.pending) + len(staged) >= self.max_pending:
                    raise Overloaded(f"mempool holds {len(self.pending)} transactions")
                writes = plan_tx(self.view, tx, _NO_L1, self.config, signer_verified=False)
            except RollupError as exc:
                results.append(exc)
                continue
            for key, value in writes.items():  # later items in this call see these writes
                undo.append((key, self.overlay.writes.get(key)))
                self.overlay.set(key, value)
            staged_at[h] = len(staged)
            results.append(len(staged))
            staged.append((h, raw, tx, writes))
        if staged:
            try:
                seqs = self.store.add_many([(h, raw) for h, raw, _, _ in staged])
            except BaseException:
                for key, old in reversed(undo):  # nothing was logged: forget the staged writes
                    if old is None:
                        del self.overlay.writes[key]
                    else:
                        self.overlay.writes[key] = old
                raise
            for (h, raw, tx, _), seq in zip(staged, seqs, strict=True):
                self.pending.append(PendingTx(seq, h, raw, tx))
                self.hashes.add(h)
            PENDING.set(len(self.pending))
        return [(staged[r][0], seqs[r]) if isinstance(r, int) else r for r in results]

    def _accept(self, ptx: PendingTx, writes: dict[bytes, bytes]) -> None:
        for key, value in writes.items():
            self.overlay.set(key, value)
        self.pending.append(ptx)
        self.hashes.add(ptx.hash)
        PENDING.set(len(self.pending))

    def apply_deposits(self, deposits: Iterable[Deposit], ctx: L1Context) -> None:
        """Add L1 deposits (in queue order) to the speculative view."""
        for dep in deposits:
            try:
                writes = plan_tx(self.view, dep, ctx, self.config, signer_verified=True)
            except InvalidTransaction:
                continue  # already counted in the view, or not next in the queue
            for key, value in writes.items():
                self.overlay.set(key, value)

    def remove_included(self, hashes: set[bytes]) -> list[PendingTx]:
        """Take transactions that an L1 batch now holds out of the pending list."""
        included = [p for p in self.pending if p.hash in hashes]
        if included:
            self.pending = [p for p in self.pending if p.hash not in hashes]
            self.hashes -= {p.hash for p in included}
            PENDING.set(len(self.pending))
        return included

    def rebase(
        self, base_state: State, deposits: list[Deposit], ctx: L1Context, extra: list[PendingTx]
    ) -> None:
        """Rebuild the speculative view on a new chain state.

        `extra` are transactions to (re)admit, e.g. those of reverted batches; every pending
        transaction is planned again in admission order and dropped if it no longer applies.
        """
        self.overlay = OverlayTree(base_state.tree)
        self.view = State(tree=self.overlay)  # type: ignore[arg-type]
        self.apply_deposits(deposits, ctx)
        candidates = sorted({p.hash: p for p in [*self.pending, *extra]}.values(), key=lambda p: p.seq)
        self.pending = []
        self.hashes = set()
        for ptx in candidates:
            try:
                writes = plan_tx(self.view, ptx.tx, _NO_L1, self.config, signer_verified=True)
            except InvalidTransaction as exc:
                self.store.drop(ptx.seq, f"{exc.code}: {exc}")
                log.warning("tx_dropped", hash=ptx.hash, seq=ptx.seq, code=exc.code, reason=str(exc))
                continue
            self._accept(ptx, writes)
        PENDING.set(len(self.pending))
