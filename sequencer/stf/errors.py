"""The error hierarchy of the state machine.

`RollupError` is the root of every error our packages raise on purpose. `InvalidTransaction`
families carry a `code` (protocol section 7) so the API maps a family to one HTTP status;
`InvalidBatch` says where a batch stops matching its commitments.
"""

from __future__ import annotations


class RollupError(Exception):
    """Root of the errors of the rollup."""

    code = "internal"
    """Machine-readable error code (protocol section 7)."""


class InvalidTransaction(RollupError):
    """A transaction breaks a rule: inside a batch it is a no-op, at the API it is refused."""

    code = "invalid_transaction"


class DecodeError(InvalidTransaction):
    """The bytes do not decode to a transaction (unknown type, wrong length, bad field)."""

    code = "malformed"


class BadSignature(InvalidTransaction):
    """The signature is invalid, malleable, or not by the sender."""

    code = "bad_signature"

    def __init__(self, account: bytes) -> None:
        super().__init__(f"signature is not a valid signature by 0x{account.hex()}")
        self.account = account
        """The claimed signer (`from`)."""


class BadNonce(InvalidTransaction):
    """The nonce is not the account's next one."""

    code = "bad_nonce"

    def __init__(self, account: bytes, expected: int, got: int) -> None:
        super().__init__(f"nonce of 0x{account.hex()} is {expected}, got {got}")
        self.account = account
        """The sender."""
        self.expected = expected
        """The account's next nonce."""
        self.got = got
        """The transaction's nonce."""


class InsufficientBalance(InvalidTransaction):
    """The amount is above the sender's collateral."""

    code = "insufficient_balance"

    def __init__(self, account: bytes, required: int, available: int) -> None:
        super().__init__(f"0x{account.hex()} needs {required}, has {available}")
        self.account = account
        """The sender."""
        self.required = required
        """The amount asked for."""
        self.available = available
        """The sender's collateral."""


class InvalidAmount(InvalidTransaction):
    """The amount is zero or above `MAX_TOTAL_DEPOSITS`."""

    code = "invalid_amount"

    def __init__(self, amount: int) -> None:
        super().__init__(f"invalid amount {amount}")
        self.amount = amount
        """The refused amount."""


class InvalidRecipient(InvalidTransaction):
    """A withdrawal to the zero address (the L1 payout would lock the funds)."""

    code = "invalid_recipient"

    def __init__(self, account: bytes) -> None:
        super().__init__(f"withdrawal from 0x{account.hex()} to the zero address")
        self.account = account
        """The sender."""


class SelfTransfer(InvalidTransaction):
    """A transfer from an account to itself."""

    code = "self_transfer"

    def __init__(self, account: bytes) -> None:
        super().__init__(f"transfer from 0x{account.hex()} to itself")
        self.account = account
        """The sender (and recipient)."""


class BadDeposit(InvalidTransaction):
    """A queue entry (deposit or message) out of queue order, beyond the batch's `queue_end`, or
    not matching L1."""

    code = "bad_deposit"

    def __init__(self, queue_index: int, reason: str) -> None:
        super().__init__(f"deposit {queue_index}: {reason}")
        self.queue_index = queue_index
        """The deposit's queue index."""
        self.reason = reason
        """Which deposit rule it breaks."""


class WithdrawalExists(InvalidTransaction):
    """The withdrawal leaf `(account, nonce)` is already written."""

    code = "withdrawal_exists"

    def __init__(self, account: bytes, nonce: int) -> None:
        super().__init__(f"withdrawal (0x{account.hex()}, {nonce}) exists")
        self.account = account
        """The sender."""
        self.nonce = nonce
        """The withdrawal's nonce."""


class InsufficientMargin(InvalidTransaction):
    """The account would end below its initial margin (or a risk-reducing trade loses too much)."""

    code = "insufficient_margin"

    def __init__(self, account: bytes, required: int, equity: int) -> None:
        super().__init__(f"0x{account.hex()} needs margin {required}, has equity {equity}")
        self.account = account
        """The account."""
        self.required = required
        """The margin it must keep."""
        self.equity = equity
        """Its equity after the transaction."""


class UnknownMarket(InvalidTransaction):
    """The market is not listed."""

    code = "unknown_market"

    def __init__(self, market: int) -> None:
        super().__init__(f"market {market} is not listed")
        self.market = market
        """The market id."""


class PriceOffTick(InvalidTransaction):
    """A price is not a positive multiple of the market's tick."""

    code = "price_off_tick"

    def __init__(self, price: int, tick: int) -> None:
        super().__init__(f"price {price} is not a positive multiple of the tick {tick}")
        self.price = price
        """The price."""
        self.tick = tick
        """The market's tick size."""


class SizeOffLot(InvalidTransaction):
    """A size is not a positive multiple of the market's lot."""

    code = "size_off_lot"

    def __init__(self, size: int, lot: int) -> None:
        super().__init__(f"size {size} is not a positive multiple of the lot {lot}")
        self.size = size
        """The size."""
        self.lot = lot
        """The market's lot size."""


class OrderExpired(InvalidTransaction):
    """The order's expiry has passed (`l2_time >= expiry`)."""

    code = "order_expired"

    def __init__(self, expiry: int, now: int) -> None:
        super().__init__(f"order expired at {expiry}, time is {now}")
        self.expiry = expiry
        """The order's expiry."""
        self.now = now
        """The time it was checked at."""


class OrderCancelled(InvalidTransaction):
    """The order was cancelled."""

    code = "order_cancelled"

    def __init__(self, digest: bytes) -> None:
        super().__init__(f"order 0x{digest.hex()} is cancelled")
        self.digest = digest
        """The order's digest."""


class Overfill(InvalidTransaction):
    """The order has no room left for the size."""

    code = "overfill"

    def __init__(self, digest: bytes, size: int, filled: int, wanted: int) -> None:
        super().__init__(
            f"order 0x{digest.hex()} of size {size} has {filled} filled; {wanted} more overfills"
        )
        self.digest = digest
        """The order's digest."""
        self.size = size
        """The order's size."""
        self.filled = filled
        """What was filled before."""
        self.wanted = wanted
        """The size asked for."""


class SelfTrade(InvalidTransaction):
    """Both sides of a trade are one account."""

    code = "self_trade"

    def __init__(self, account: bytes) -> None:
        super().__init__(f"0x{account.hex()} is on both sides")
        self.account = account
        """The account."""


class StaleOracle(InvalidTransaction):
    """A market's price is older than its staleness limit (or there is none yet)."""

    code = "stale_oracle"

    def __init__(self, market: int, oracle_time: int, now: int) -> None:
        super().__init__(f"market {market}: price of {oracle_time} is stale at {now}")
        self.market = market
        """The market id."""
        self.oracle_time = oracle_time
        """Time of its last price (0: never)."""
        self.now = now
        """The time it was checked at."""


class MarketHalted(InvalidTransaction):
    """The circuit breaker halted risk-increasing trades in the market."""

    code = "market_halted"

    def __init__(self, market: int, until: int) -> None:
        super().__init__(f"market {market} is halted until {until}")
        self.market = market
        """The market id."""
        self.until = until
        """When the halt ends."""


class ReduceOnly(InvalidTransaction):
    """A reduce-only order would increase (or flip) its trader's position."""

    code = "reduce_only"

    def __init__(self, account: bytes, market: int) -> None:
        super().__init__(f"reduce-only order of 0x{account.hex()} would increase its position in {market}")
        self.account = account
        """The trader."""
        self.market = market
        """The market id."""


class PositionLimit(InvalidTransaction):
    """A position would pass the market's `max_position`, or the account MAX_POSITIONS positions."""

    code = "position_limit"

    def __init__(self, account: bytes, market: int, reason: str) -> None:
        super().__init__(f"0x{account.hex()} in market {market}: {reason}")
        self.account = account
        """The account."""
        self.market = market
        """The market id."""


class NotLiquidatable(InvalidTransaction):
    """The account is not in the state a liquidation or deleverage needs."""

    code = "not_liquidatable"

    def __init__(self, account: bytes, reason: str) -> None:
        super().__init__(f"0x{account.hex()}: {reason}")
        self.account = account
        """The account."""
        self.reason = reason
        """Which condition fails."""


class InvalidOrder(InvalidTransaction):
    """An order rule other than the ones with their own error: flags, sides, markets of a trade."""

    code = "invalid_order"


class InvalidOracleUpdate(InvalidTransaction):
    """An oracle update that the committee rules refuse (signers, threshold, prices, times)."""

    code = "invalid_oracle_update"


class FundingNotDue(InvalidTransaction):
    """A funding step before its interval has passed (or before funding started)."""

    code = "funding_not_due"

    def __init__(self, market: int, due: int, now: int) -> None:
        super().__init__(f"market {market}: funding due at {due}, time is {now}")
        self.market = market
        """The market id."""


class WrongFundingPeriod(FundingNotDue):
    """A funding step that names another period than the market's: already settled (a replay) or
    not reached yet. Its `since` must be the market's `last_funding_time`."""

    def __init__(self, market: int, last_funding_time: int, since: int) -> None:
        InvalidTransaction.__init__(
            self,
            f"market {market}: funding settles from {last_funding_time}, the step names {since}",
        )
        self.market = market
        """The market id."""
        self.last_funding_time = last_funding_time
        """The market's `last_funding_time`: the period a funding step must name."""
        self.since = since
        """The period the step named."""


class InvalidMessage(InvalidTransaction):
    """A governance payload that does not decode or breaks its rules (only advances the queue)."""

    code = "invalid_message"


class OpenOrderRefused(RollupError):
    """An order the sequencer does not rest: its trader's open orders would not be backed. Resting
    orders are the sequencer's, not state, so this is an admission rule (`margin.check_open_order`);
    a fill of a resting order is still held to the transaction rules."""


class InsufficientOrderMargin(OpenOrderRefused):
    """The account's equity would not cover the initial margin of its positions plus its open
    orders, each market's worst side as if filled (`margin.order_margin`)."""

    code = "insufficient_order_margin"

    def __init__(self, account: bytes, market: int, required: int, equity: int) -> None:
        super().__init__(
            f"0x{account.hex()} needs margin {required} with its open orders in market {market},"
            f" has equity {equity}"
        )
        self.account = account
        """The account."""
        self.market = market
        """The market of the order refused."""
        self.required = required
        """The margin its positions and open orders would need."""
        self.equity = equity
        """Its equity (funding settled)."""


class OpenPositionLimit(OpenOrderRefused):
    """The account's position plus its open orders on one side would pass the market's
    `max_position`."""

    code = "open_position_limit"

    def __init__(self, account: bytes, market: int, exposure: int, limit: int) -> None:
        super().__init__(
            f"0x{account.hex()} in market {market}: position and open orders reach {exposure}, above {limit}"
        )
        self.account = account
        """The account."""
        self.market = market
        """The market id."""
        self.exposure = exposure
        """|position| if every open order of that side filled, with the order refused."""
        self.limit = limit
        """The market's `max_position`."""


class OpenOrdersUncovered(OpenOrderRefused):
    """The account's equity does not cover the margin of its positions plus its open orders
    (`margin.order_margin`): why the sequencer cancels resting orders after a price or the
    account moved."""

    code = "insufficient_order_margin"

    def __init__(self, account: bytes, required: int, equity: int) -> None:
        super().__init__(
            f"0x{account.hex()} needs margin {required} with its open orders, has equity {equity}"
        )
        self.account = account
        """The account."""
        self.required = required
        """The margin its positions and open orders need."""
        self.equity = equity
        """Its equity (funding settled)."""


class TransferUncoversOrders(OpenOrdersUncovered):
    """A Transfer or Withdraw would leave its sender's equity below the margin of its positions
    plus its open orders: refused at admission (a forced one is followed by cancels instead)."""

    def __init__(self, account: bytes, required: int, equity: int) -> None:
        OpenOrderRefused.__init__(
            self,
            f"0x{account.hex()} would have equity {equity} after this transaction, below the margin"
            f" {required} of its positions and open orders: cancel open orders first",
        )
        self.account = account
        self.required = required
        self.equity = equity


class TooManyOpenOrders(OpenOrderRefused):
    """The account already has the most resting orders a sequencer keeps for one account (its
    `max_open_orders` setting)."""

    code = "too_many_open_orders"

    def __init__(self, account: bytes, limit: int) -> None:
        super().__init__(f"0x{account.hex()} has {limit} resting orders, the most this sequencer keeps")
        self.account = account
        """The account."""
        self.limit = limit
        """The sequencer's limit."""


class InvalidBatch(RollupError):
    """A batch does not match what re-executing it gives."""

    code = "invalid_batch"

    def __init__(self, reason: str, tx_index: int | None = None) -> None:
        where = "" if tx_index is None else f" at tx {tx_index}"
        super().__init__(f"invalid batch: {reason}{where}")
        self.reason = reason
        """What mismatched (one of the `REASON_*` strings of `transition`)."""
        self.tx_index = tx_index
        """Index of the first transaction whose post root mismatches, else None."""
