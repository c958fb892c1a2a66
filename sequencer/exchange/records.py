"""What the exchange answers: order outcomes, fills, cancels, bundles, the state of an order.

Plain frozen records (the API turns them into JSON); addresses and digests are `bytes`, prices
and sizes integers in the market's units.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OrderStatus(StrEnum):
    """Where an order stands."""

    RESTING = "resting"
    """In the book, nothing filled yet."""
    PARTIALLY_FILLED = "partially_filled"
    """In the book with its remainder, part of it filled."""
    FILLED = "filled"
    """Filled to its size."""
    CANCELLED = "cancelled"
    """Cancelled by its trader, an IOC remainder, a resting order cancelled by self-trade
    prevention, or by the sequencer when its trader's margin no longer covered it (the reason
    says which)."""
    EXPIRED = "expired"
    """Left the book at its expiry."""
    REJECTED = "rejected"
    """Left the book because a fill against it broke a rule of its trader's (margin, reduce-only,
    position limit, its Order leaf): it can no longer trade (the reason has the code)."""
    REFUSED = "refused"
    """Some of it filled, then the rest was refused (the code says why); it never rested."""


STORED_STATUSES = frozenset({"resting", "filled", "cancelled", "expired", "rejected", "refused"})
"""The statuses the order log holds (`partially_filled` is `resting` with fills)."""


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One fill: a Fill transaction, or one leg of a BundleFill."""

    tx_hash: bytes
    """The transaction that carries it."""
    seq: int
    """That transaction's sequence number in the log (its admission order)."""
    market: int
    """Market id."""
    price: int
    """Execution price (the maker's)."""
    size: int
    """Size exchanged."""
    taker_side: int
    """0: the taker bought, 1: it sold."""
    maker: bytes
    """The maker's address."""
    taker: bytes
    """The taker's address."""
    maker_order: bytes
    """The maker order's digest."""
    taker_order: bytes
    """The taker order's (or bundle's) digest."""
    status: str = "pending"
    """The transaction's status: pending, batched, or dropped (after an L1 revert it no longer
    applied; see the transaction)."""


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What placing an order did (or, for an order placed before, where it stands)."""

    digest: bytes
    """The order's EIP-712 digest: its id."""
    status: OrderStatus
    """Its status after this placement."""
    fills: tuple[FillRecord, ...]
    """The fills of this placement (for an order placed before: all its fills)."""
    resting: int
    """Size resting in the book."""
    code: str | None = None
    """Why the remainder was refused, or the order rejected (`REFUSED`, `REJECTED`)."""
    message: str | None = None
    """The human-readable reason."""
    known: bool = False
    """True when the order had been placed before: nothing was done again."""


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What a cancel did."""

    tx_hash: bytes
    """The Cancel transaction's hash."""
    seq: int
    """Its sequence number in the log."""
    digest: bytes
    """The cancelled order's digest."""
    was_resting: bool
    """Whether the order was in one of this sequencer's books (False for an order never seen here,
    already filled, or already gone: the Cancel is still admitted, so the order can never fill)."""
    removed: int
    """Size taken out of the book."""


@dataclass(frozen=True, slots=True)
class BundleOutcome:
    """What placing a bundle did (a bundle fills whole or not at all, and never rests)."""

    digest: bytes
    """The bundle's EIP-712 digest."""
    tx_hash: bytes
    """The BundleFill transaction's hash."""
    seq: int
    """Its sequence number in the log."""
    fills: tuple[FillRecord, ...]
    """One fill per leg, in leg order."""
    known: bool = False
    """True when the bundle had been placed before: nothing was done again."""


@dataclass(frozen=True, slots=True)
class OrderDetails:
    """An order as `GET /v1/orders/{digest}` shows it."""

    digest: bytes
    """Its id."""
    kind: str
    """order or bundle."""
    trader: bytes
    """Its signer."""
    market: int | None
    """Its market (None for a bundle)."""
    side: int | None
    """0 buy, 1 sell (None for a bundle)."""
    price: int | None
    """Limit price (None for a bundle)."""
    size: int | None
    """Signed size (None for a bundle)."""
    flags: int | None
    """POST_ONLY 1, REDUCE_ONLY 2, IOC 4 (None for a bundle)."""
    expiry: int
    """0 or the second from which it is dead."""
    salt: int
    """The salt it was signed with (with the other fields, what a Cancel signs)."""
    status: OrderStatus
    """Where it stands."""
    reason: str | None
    """`code: message` for a cancelled, rejected or refused order."""
    filled: int
    """Size filled, counting fills still in the mempool."""
    filled_confirmed: int
    """Size filled on the L1 tip."""
    resting: int
    """Size in the book."""
    fills: tuple[FillRecord, ...]
    """Its fills, oldest first."""
