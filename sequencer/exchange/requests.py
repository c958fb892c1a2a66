"""What the exchange is asked to do (`ExchangeRequest`), what it answers (`Answer`), and the
records of one operation's work in progress (`Run`, `Placed`, `Known`, `Resting`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sequencer.exchange.orderlog import OrderWrites
from sequencer.exchange.records import BundleOutcome, CancelOutcome, FillRecord, OrderOutcome, OrderStatus
from sequencer.matching import BookEvent
from sequencer.mempool import Staging
from sequencer.stf.errors import RollupError
from sequencer.stf.margin import Markets
from sequencer.stf.types import Bundle, Cancel, Signature, SignedOrder, Tx


@dataclass(frozen=True, slots=True)
class PlaceOrders:
    """Place signed orders in sequence (answer: one `OrderOutcome` or refusal per order)."""

    orders: Sequence[SignedOrder]
    digests: Sequence[bytes] | None = None
    """The orders' EIP-712 digests, if already computed (`order_digest`)."""
    signers: Sequence[bytes | None] | None = None
    """The addresses their signatures recover to (`recover_sig`), if already recovered."""


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Admit a signed Cancel and take its order out of the book (answer: a `CancelOutcome`)."""

    tx: Cancel


@dataclass(frozen=True, slots=True)
class PlaceBundle:
    """Fill a signed bundle whole or refuse it (answer: a `BundleOutcome`)."""

    bundle: Bundle
    sig: Signature


@dataclass(frozen=True, slots=True)
class AdmitTxs:
    """Admit transactions in order as `Mempool.submit_many` does (answer: (hash, seq) or the
    refusal per item); the books follow raw Cancel, Fill and BundleFill transactions."""

    items: Sequence[Tx | bytes]


ExchangeRequest = PlaceOrders | CancelOrder | PlaceBundle | AdmitTxs
"""What `Exchange.admit` carries out in one commit."""

Answer = (
    list[OrderOutcome | RollupError]
    | CancelOutcome
    | BundleOutcome
    | list[tuple[bytes, int] | RollupError]
    | RollupError
)
"""The answer to one `ExchangeRequest` (a `RollupError` when the request is refused whole)."""

Finish = Callable[[dict[bytes, int]], Answer]
"""Makes a request's answer once the commit has given its transactions their seqs (by hash)."""


def answered(answer: Answer) -> Finish:
    """A request's answer known before the commit (a refusal)."""
    return lambda _: answer


@dataclass(frozen=True, slots=True)
class Resting:
    """A resting order as the exchange keeps it: the signed order (to build fills) and its seq."""

    signed: SignedOrder
    seq: int


@dataclass
class Run:
    """One operation's work in progress: staged transactions, order-log writes, stream messages."""

    stage: Staging
    writes: OrderWrites
    markets: Markets
    hi: int
    """Time for the rules that get stricter later (expiry, staleness)."""
    lo: int
    """The earliest clock the next batch can have (for the circuit breaker)."""
    priority: bool
    """Fills of this run may use the mempool's reserve (rebuilds only)."""
    messages: list[dict[str, Any] | FillRecord | BookEvent] = field(default_factory=list)
    """Stream messages in order (fills and book changes are made messages after the commit, when
    there is a subscriber to read them; fills then get their seq)."""
    rejected: dict[bytes, RollupError] = field(default_factory=dict)
    """Why makers were rejected in this run."""
    seen: set[bytes] = field(default_factory=set)
    """Digests placed in this run (a repeat in one batch request is answered as known)."""


@dataclass
class Placed:
    """An order worked in a run, before the commit gives its fills their seqs."""

    digest: bytes
    status: OrderStatus
    resting: int = 0
    fills: list[FillRecord] = field(default_factory=list)
    """Its fills (seq -1 until the commit)."""
    stop: RollupError | None = None


@dataclass(frozen=True, slots=True)
class Known:
    """An order placed before (answered from the log after the commit)."""

    digest: bytes
