"""What one durable commit of the sequencer's log wrote, as the set's log carries it.

A sequencer that leads a set (`sequencer.cluster`) hands every commit of its SQLite log to the
set's replicated log before any of it is acknowledged; the other members write the same rows into
their own logs. A commit is the transactions it logged, each with the sequence number it got, and
the order records written with them (`sequencer.exchange.orderlog`), with every transaction
reference already turned into its sequence number, so a member that writes them gets exactly the
rows the leader has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

OrderInsert = tuple[bytes, int, str, bytes, int, bytes, str, "str | None"]
"""A new row of `orders`: digest, seq, kind, trader, market, raw, status, reason."""
OrderStatusChange = tuple[bytes, str, "str | None"]
"""An order's new status: digest, status, reason."""
FillIndex = tuple[int, int, bytes, bytes, bytes, bytes]
"""A new row of `fills`: tx_seq, leg, maker, taker, maker_order, taker_order."""
FillMove = tuple[int, int]
"""Fill rows that follow a transaction to its new seq: (new seq, old seq)."""


@dataclass(frozen=True, slots=True)
class TxRow:
    """A transaction as one commit logged it."""

    seq: int
    """Its sequence number in the log (the same on every member)."""
    clock: int
    """The batch clock it was admitted at (`PendingTx.clock`)."""
    deadline: int
    """The latest batch clock its time rules were checked at (`PendingTx.deadline`)."""
    raw: bytes
    """The encoded transaction (protocol section 3)."""


@dataclass(slots=True)
class OrderRecords:
    """The order-log rows one commit wrote, in the order they are written."""

    inserts: list[OrderInsert] = field(default_factory=list)
    statuses: list[OrderStatusChange] = field(default_factory=list)
    moves: list[FillMove] = field(default_factory=list)
    fills: list[FillIndex] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.inserts or self.statuses or self.moves or self.fills)


@dataclass(frozen=True, slots=True)
class Commit:
    """One durable commit: its transactions, then its order records."""

    txs: tuple[TxRow, ...]
    orders: OrderRecords | None = None


JournalSink = Callable[[Commit], None]
"""Told of every commit as soon as it is durable locally (before anything of it is answered)."""
