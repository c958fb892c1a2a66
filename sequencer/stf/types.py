"""Records of the state machine: transactions, accounts, chain config, batch header, L1 context.

Addresses are 20-byte `bytes`, hashes and roots 32-byte `bytes`, amounts integers in the
collateral token's smallest unit.

One file though long: it is the state machine's vocabulary, frozen records with a docstring per
field, read together and imported everywhere as one module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from sequencer.stf.constants import EIP712_NAME, EIP712_VERSION
from sequencer.stf.hashing import keccak

EIP712_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
"""keccak of the EIP-712 domain type string."""


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address_word(address: bytes) -> bytes:
    if len(address) != 20:
        raise ValueError("an address is 20 bytes")
    return bytes(12) + address


def checksum_address(address: bytes) -> str:
    """The EIP-55 mixed-case hex form of a 20-byte address (what web3 expects)."""
    hex_address = address.hex()
    digest = keccak(hex_address.encode()).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(hex_address))


@dataclass(frozen=True, slots=True)
class Deposit:
    """Credit a deposit made on the L1 Bridge (consumed in queue order)."""

    queue_index: int
    """Position of the deposit in the Bridge's queue (uint64)."""
    to: bytes
    """Rollup account credited."""
    amount: int
    """Collateral credited."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """Move collateral between two rollup accounts (EIP-712 signed by `sender`)."""

    sender: bytes
    """The signer and debited account (`from`)."""
    to: bytes
    """The credited account."""
    amount: int
    """Collateral moved (> 0)."""
    nonce: int
    """The sender's next nonce (uint64)."""
    r: int
    """Signature r."""
    s: int
    """Signature s (low half of the curve order)."""
    v: int
    """Signature v (27 or 28)."""


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Move collateral out to an L1 address (EIP-712 signed by `sender`)."""

    sender: bytes
    """The signer and debited account (`from`)."""
    to: bytes
    """The L1 recipient."""
    amount: int
    """Collateral withdrawn (> 0)."""
    nonce: int
    """The sender's next nonce (uint64); also names the withdrawal leaf."""
    r: int
    """Signature r."""
    s: int
    """Signature s (low half of the curve order)."""
    v: int
    """Signature v (27 or 28)."""


@dataclass(frozen=True, slots=True)
class Signature:
    """An EIP-712 signature `(r, s, v)`, encoded `r(32) || s(32) || v(1)`."""

    r: int
    """Signature r."""
    s: int
    """Signature s (low half of the curve order)."""
    v: int
    """Signature v (27 or 28)."""


@dataclass(frozen=True, slots=True)
class Order:
    """A trader's order (EIP-712 `Order`), 56 bytes encoded."""

    trader: bytes
    """The signer, whose account trades."""
    market: int
    """Market id (uint16)."""
    side: int
    """0 buys, 1 sells."""
    price: int
    """Limit price, collateral per size unit (uint64, a multiple of the market's tick)."""
    size: int
    """Size in size units (uint64, a multiple of the market's lot)."""
    flags: int
    """Bit set: POST_ONLY 1, REDUCE_ONLY 2, IOC 4."""
    expiry: int
    """Unix second from which the order is dead; 0 never expires (uint64)."""
    salt: int
    """Makes otherwise equal orders distinct (uint64)."""


@dataclass(frozen=True, slots=True)
class SignedOrder:
    """An order with its signature."""

    order: Order
    """The order."""
    sig: Signature
    """The trader's signature of it."""


@dataclass(frozen=True, slots=True)
class Fill:
    """A match of a resting maker order and an arriving taker order, at the maker's price."""

    maker: SignedOrder
    """The resting order."""
    taker: SignedOrder
    """The arriving order."""
    size: int
    """Size exchanged (uint64)."""


@dataclass(frozen=True, slots=True)
class Cancel:
    """A trader's cancellation of one of its orders (EIP-712 `Cancel(Order order)`)."""

    order: Order
    """The order cancelled."""
    sig: Signature
    """The order's trader's signature of the cancellation."""


@dataclass(frozen=True, slots=True)
class PriceEntry:
    """One committee member's signed price (EIP-712 `Price`)."""

    mark: int
    """Mark price (uint64, > 0)."""
    index: int
    """Index (spot) price (uint64, > 0)."""
    timestamp: int
    """When the member observed it (uint64)."""
    sig: Signature
    """The member's signature."""


@dataclass(frozen=True, slots=True)
class OracleUpdate:
    """New mark and index prices: the medians of at least `threshold` committee prices."""

    market: int
    """Market id."""
    prices: tuple[PriceEntry, ...]
    """The signed prices (1 to MAX_PRICE_SIGNATURES)."""


@dataclass(frozen=True, slots=True)
class Funding:
    """A funding step of one market (anyone may include it once the interval has passed).

    It names the period it settles from, so each step has its own bytes (and hash) and a replayed
    one is a no-op."""

    market: int
    """Market id."""
    since: int
    """The market's `last_funding_time` the step settles from (uint64); any other is invalid."""


@dataclass(frozen=True, slots=True)
class Liquidate:
    """A liquidator takes over part of an account's position at the mark (EIP-712 `Liquidate`)."""

    liquidator: bytes
    """The signer, who takes the position."""
    account: bytes
    """The account below maintenance margin."""
    market: int
    """Market of the position."""
    size: int
    """Size taken over (uint64, a multiple of the lot)."""
    nonce: int
    """The liquidator's next nonce (uint64)."""
    sig: Signature
    """The liquidator's signature."""


@dataclass(frozen=True, slots=True)
class Deleverage:
    """Auto-deleveraging: a bankrupt account's last position closes against an opposite one."""

    account: bytes
    """The bankrupt account."""
    counterparty: bytes
    """The account holding an opposite position that absorbs it."""
    market: int
    """Market of the position."""
    nonce: int
    """The bankrupt account's next nonce (uint64), which the deleverage consumes: each deleverage
    of an account has its own bytes (and hash) and a replayed one is a no-op."""


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg of a bundle: what the bundle's trader takes in one market."""

    market: int
    """Market id (distinct across a bundle's legs)."""
    side: int
    """0 buys, 1 sells."""
    price: int
    """Limit price of the leg."""
    size: int
    """Size of the leg, filled whole."""


@dataclass(frozen=True, slots=True)
class Bundle:
    """A multi-leg order (EIP-712 `Bundle`): every leg fills in full, or none."""

    trader: bytes
    """The signer."""
    legs: tuple[Leg, ...]
    """1 to MAX_LEGS legs."""
    expiry: int
    """Unix second from which the bundle is dead; 0 never expires."""
    salt: int
    """Makes otherwise equal bundles distinct."""


@dataclass(frozen=True, slots=True)
class BundleFill:
    """A bundle filled leg by leg against one resting maker order per leg."""

    bundle: Bundle
    """The taker's bundle."""
    sig: Signature
    """The bundle trader's signature."""
    makers: tuple[SignedOrder, ...]
    """Maker order of each leg, aligned with `bundle.legs`."""


@dataclass(frozen=True, slots=True)
class L1Message:
    """A governance message consumed from the L1 queue."""

    queue_index: int
    """Position in the Bridge's queue."""
    payload: bytes
    """`kind(1) || body` (SetMarket, SetCommittee); an invalid payload only advances the queue."""


@dataclass(frozen=True, slots=True)
class ForcedTx:
    """A user's signed Transfer, Withdraw or Cancel forced through the L1 queue (`Bridge.force_tx`)."""

    queue_index: int
    """Position in the Bridge's queue."""
    tx: bytes
    """The inner transaction's canonical bytes, as queued; when they do not decode to a Transfer,
    Withdraw or Cancel that applies, the ForcedTx only advances the queue."""


Tx = (
    Deposit
    | Transfer
    | Withdraw
    | L1Message
    | OracleUpdate
    | Funding
    | Fill
    | Cancel
    | Liquidate
    | Deleverage
    | BundleFill
    | ForcedTx
)
"""A decoded transaction."""

SignedTx = Transfer | Withdraw
"""A Transfer or Withdraw (their EIP-712 messages share one shape)."""


@dataclass(frozen=True, slots=True)
class Position:
    """An open position of an account in one market."""

    market: int
    """Market id."""
    size: int
    """Signed size: > 0 long, < 0 short, never 0."""
    open_notional: int
    """Signed sum paid for the open size (the sign of `size`)."""
    funding_snapshot: int
    """The market's funding index when funding was last settled into the account."""


@dataclass(frozen=True, slots=True)
class Account:
    """The value of an Account leaf."""

    collateral: int = 0
    """Collateral held, in the token's smallest unit (signed: a loss can exceed it)."""
    nonce: int = 0
    """Next nonce the account must sign with."""
    positions: tuple[Position, ...] = ()
    """Open positions, by market id ascending (at most MAX_POSITIONS)."""


EMPTY_ACCOUNT = Account(0, 0)
"""What an absent Account leaf means."""


class Acct:
    """An account being worked on (the rules' mutable form of `Account`):
    `positions[market] = [size, open_notional, funding_snapshot]`."""

    __slots__ = ("collateral", "nonce", "positions")

    def __init__(self, collateral: int, nonce: int, positions: dict[int, list[int]]) -> None:
        self.collateral = collateral
        """Signed collateral."""
        self.nonce = nonce
        """Next nonce."""
        self.positions = positions
        """Open positions (size never 0)."""

    @classmethod
    def of(cls, account: Account) -> Acct:
        """The working record of an `Account`."""
        return cls(
            account.collateral,
            account.nonce,
            {p.market: [p.size, p.open_notional, p.funding_snapshot] for p in account.positions},
        )

    def size(self, market: int) -> int:
        """The signed size held in `market` (0 if none)."""
        p = self.positions.get(market)
        return 0 if p is None else p[0]

    def to_account(self) -> Account:
        """The immutable record of the same account (positions by market ascending)."""
        return Account(
            self.collateral,
            self.nonce,
            tuple(Position(m, *self.positions[m]) for m in sorted(self.positions)),
        )


@dataclass(frozen=True, slots=True)
class MarketParams:
    """A market's parameters, set by an L1 governance message (SetMarket)."""

    tick_size: int
    """Prices of orders are multiples of it."""
    lot_size: int
    """Sizes are multiples of it."""
    max_position: int
    """Largest |size| an account may hold (a trade may reduce above it)."""
    imr_bps: int
    """Initial margin, of the notional at the mark."""
    mmr_bps: int
    """Maintenance margin."""
    maker_fee_bps: int
    """Maker fee (negative: a rebate)."""
    taker_fee_bps: int
    """Taker fee."""
    liquidation_penalty_bps: int
    """Penalty a liquidated position pays into Insurance."""
    breaker_bps: int
    """Mark move within `breaker_window` that halts risk-increasing trades (0: no breaker)."""
    max_funding_bps: int
    """Cap of one funding step, of the index price."""
    funding_interval: int
    """Seconds between funding steps."""
    breaker_window: int
    """Seconds of the circuit breaker's window (and of a halt)."""
    max_oracle_age: int
    """Seconds after which the market's price is stale."""


@dataclass(frozen=True, slots=True)
class Market:
    """One market's record in the Markets leaf: parameters and live state."""

    params: MarketParams
    """The parameters."""
    mark_price: int = 0
    """Mark price (0 before the first oracle update)."""
    index_price: int = 0
    """Index price."""
    oracle_time: int = 0
    """Time of the last accepted oracle update (0: never)."""
    halted_until: int = 0
    """Risk-increasing trades are halted while `l2_time < halted_until`."""
    funding_index: int = 0
    """Cumulative funding, collateral per size unit (signed 128-bit)."""
    last_funding_time: int = 0
    """Time funding was last stepped to (0: funding has not started)."""
    breaker_ref_time: int = 0
    """Start of the circuit breaker's current window."""
    breaker_ref_price: int = 0
    """Mark at the start of the window."""


@dataclass(frozen=True, slots=True)
class OrderState:
    """The value of an Order leaf."""

    filled: int = 0
    """Size filled so far."""
    cancelled: bool = False
    """True once the trader cancelled it."""


@dataclass(frozen=True, slots=True)
class Committee:
    """The oracle committee (the Oracle leaf)."""

    threshold: int
    """Least number of distinct member prices in an update."""
    members: tuple[bytes, ...]
    """Member addresses."""


@dataclass(frozen=True, slots=True)
class SetMarket:
    """Governance payload: list market `market` (the next id) or change its parameters."""

    market: int
    """Market id."""
    params: MarketParams
    """New parameters."""


@dataclass(frozen=True, slots=True)
class SetCommittee:
    """Governance payload: replace the oracle committee."""

    committee: Committee
    """The new committee."""


GovernanceMessage = SetMarket | SetCommittee
"""A decoded governance payload."""


@dataclass(frozen=True)
class ChainConfig:
    """What binds signatures to one deployment: the L1 chain id and the Rollup address."""

    chain_id: int
    """EIP-155 chain id of the L1."""
    rollup: bytes
    """Address of the Rollup contract (the EIP-712 `verifyingContract`)."""

    @cached_property
    def domain_separator(self) -> bytes:
        """The EIP-712 domain separator (computed once per config)."""
        return keccak(
            EIP712_DOMAIN_TYPEHASH
            + keccak(EIP712_NAME.encode())
            + keccak(EIP712_VERSION.encode())
            + _word(self.chain_id)
            + _address_word(self.rollup)
        )


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """A batch header as stored on L1 (protocol section 4); hashed as eleven ABI words."""

    index: int
    """Position in the chain of batches, from 0."""
    prev_root: bytes
    """State root before the batch."""
    post_root: bytes
    """State root after the batch (= the last per-tx root)."""
    tx_root: bytes
    """Root of the transaction tree."""
    roots_root: bytes
    """Root of the per-transaction state-root tree."""
    tx_count: int
    """Number of transactions."""
    queue_start: int
    """First deposit-queue index the batch may consume."""
    queue_end: int
    """One past the last queue index consumed."""
    l2_time: int
    """The batch's clock (unix seconds), declared by the sequencer."""
    sequencer: bytes
    """Address of the sequencer that appended the batch."""
    timestamp: int
    """L1 block timestamp of the append."""

    def encode(self) -> bytes:
        """`abi.encode(header)`: eleven 32-byte words in field order."""
        for name in ("prev_root", "post_root", "tx_root", "roots_root"):
            if len(getattr(self, name)) != 32:
                raise ValueError(f"{name} is 32 bytes")
        return b"".join(
            (
                _word(self.index),
                self.prev_root,
                self.post_root,
                self.tx_root,
                self.roots_root,
                _word(self.tx_count),
                _word(self.queue_start),
                _word(self.queue_end),
                _word(self.l2_time),
                _address_word(self.sequencer),
                _word(self.timestamp),
            )
        )

    def hash(self) -> bytes:
        """`batch_hash = keccak(abi.encode(header))`."""
        return keccak(self.encode())

    def as_tuple(self) -> tuple[int, bytes, bytes, bytes, bytes, int, int, int, int, str, int]:
        """The header as a web3 struct argument (field order; the address EIP-55 checksummed)."""
        return (
            self.index,
            self.prev_root,
            self.post_root,
            self.tx_root,
            self.roots_root,
            self.tx_count,
            self.queue_start,
            self.queue_end,
            self.l2_time,
            checksum_address(self.sequencer),
            self.timestamp,
        )

    @classmethod
    def decode(cls, data: bytes) -> BatchHeader:
        """Inverse of `encode` (352 bytes)."""
        if len(data) != 352:
            raise ValueError("an encoded header is 352 bytes")
        w = [data[i : i + 32] for i in range(0, 352, 32)]
        if w[9][:12] != bytes(12):
            raise ValueError("sequencer word is not an address")

        def n(b: bytes) -> int:
            return int.from_bytes(b, "big")

        return cls(n(w[0]), w[1], w[2], w[3], w[4], n(w[5]), n(w[6]), n(w[7]), n(w[8]), w[9][12:], n(w[10]))


@dataclass(frozen=True)
class L1Context:
    """What the state machine needs from L1 to apply one batch."""

    queue_end: int
    """The batch's `queue_end`: queue entries at or after it may not be consumed."""
    queue_hashes: Mapping[int, bytes] = field(default_factory=dict)
    """`queue_hash(i)` as the Bridge stores it (deposits, messages, forced transactions), for (at
    least) every `i < queue_end` in play."""
    l2_time: int = 0
    """The batch's `l2_time`: order expiry, oracle staleness, funding and the breaker use it."""
