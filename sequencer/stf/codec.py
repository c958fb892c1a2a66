"""Canonical encodings (protocol sections 2 and 3): transactions, governance payloads, leaf values.

Integers are big-endian (signed ones in two's complement); lengths are exact. `decode_tx` raises
`DecodeError` on an unknown type, a wrong length or a count out of range; field values are
checked by the rules, not here (a side byte of 7 decodes, and the Fill that carries it is invalid).

One file though long: every byte layout the protocol defines is read and written here, beside its
shared helpers, so there is one reading of each byte string to hold against `docs/protocol.md`.
"""

from __future__ import annotations

import struct

from sequencer.stf.constants import (
    ACCOUNT_HEAD_BYTES,
    BUNDLE_LEG_TX_BYTES,
    BUNDLE_TX_HEADER_BYTES,
    CANCEL_TX_BYTES,
    DELEVERAGE_TX_BYTES,
    DEPOSIT_TX_BYTES,
    FILL_TX_BYTES,
    FORCED_TAG,
    FORCED_TX_HEADER_BYTES,
    FUNDING_TX_BYTES,
    L1_MESSAGE_TX_HEADER_BYTES,
    LEG_BYTES,
    LIQUIDATE_TX_BYTES,
    MARKET_RECORD_BYTES,
    MAX_LEGS,
    MAX_PRICE_SIGNATURES,
    MAX_TX_BYTES,
    MESSAGE_TAG,
    MSG_SET_COMMITTEE,
    MSG_SET_MARKET,
    ORACLE_TX_HEADER_BYTES,
    ORDER_BYTES,
    POSITION_BYTES,
    PRICE_ENTRY_BYTES,
    SET_MARKET_PAYLOAD_BYTES,
    SIGNATURE_BYTES,
    SIGNED_ORDER_BYTES,
    SIGNED_TX_BYTES,
    TX_TYPE_BUNDLE_FILL,
    TX_TYPE_CANCEL,
    TX_TYPE_DELEVERAGE,
    TX_TYPE_DEPOSIT,
    TX_TYPE_FILL,
    TX_TYPE_FORCED,
    TX_TYPE_FUNDING,
    TX_TYPE_L1_MESSAGE,
    TX_TYPE_LIQUIDATE,
    TX_TYPE_ORACLE_UPDATE,
    TX_TYPE_TRANSFER,
    TX_TYPE_WITHDRAW,
)
from sequencer.stf.errors import DecodeError
from sequencer.stf.hashing import keccak
from sequencer.stf.types import (
    Account,
    Acct,
    Bundle,
    BundleFill,
    Cancel,
    Committee,
    Deleverage,
    Deposit,
    Fill,
    ForcedTx,
    Funding,
    GovernanceMessage,
    L1Message,
    Leg,
    Liquidate,
    Market,
    MarketParams,
    OracleUpdate,
    Order,
    OrderState,
    PriceEntry,
    SetCommittee,
    SetMarket,
    Signature,
    SignedOrder,
    Transfer,
    Tx,
    Withdraw,
)

_from_bytes = int.from_bytes
_ZERO12 = bytes(12)
_U256_LIMIT = 1 << 256
_ORDER_STRUCT = struct.Struct(">20sHBQQBQQ")
"""The 56-byte order (`encode_order`), packed at once when every field is in range."""
_BYTES = tuple(bytes((i,)) for i in range(256))


def _u(data: bytes, start: int, length: int) -> int:
    return _from_bytes(data[start : start + length], "big")


def _s(data: bytes, start: int, length: int) -> int:
    return _from_bytes(data[start : start + length], "big", signed=True)


def _check_address(name: str, value: bytes) -> None:
    if type(value) is not bytes or len(value) != 20:
        raise DecodeError(f"{name} must be 20 bytes")


def _check_uint(name: str, value: int, maximum: int) -> None:
    if type(value) is not int or not 0 <= value <= maximum:
        raise DecodeError(f"{name} out of range")


def _uint(name: str, value: int, length: int) -> bytes:
    _check_uint(name, value, (1 << (8 * length)) - 1)
    return value.to_bytes(length, "big")


# ---- signatures and orders -------------------------------------------------------------


def encode_signature(sig: Signature) -> bytes:
    """`r(32) || s(32) || v(1)`."""
    r, s, v = sig.r, sig.s, sig.v
    if (
        type(r) is int
        and type(s) is int
        and type(v) is int
        and 0 <= r < _U256_LIMIT
        and 0 <= s < _U256_LIMIT
        and 0 <= v <= 0xFF
    ):
        return r.to_bytes(32, "big") + s.to_bytes(32, "big") + _BYTES[v]
    return _uint("r", r, 32) + _uint("s", s, 32) + _uint("v", v, 1)  # raises the field's error


def decode_signature(data: bytes, start: int = 0) -> Signature:
    """The signature at `data[start : start + 65]`."""
    return Signature(_u(data, start, 32), _u(data, start + 32, 32), data[start + 64])


def encode_order(order: Order) -> bytes:
    """The 56-byte order: trader, market, side, price, size, flags, expiry, salt."""
    o = order
    if (
        type(o.trader) is bytes
        and len(o.trader) == 20
        and type(o.market) is int
        and type(o.side) is int
        and type(o.price) is int
        and type(o.size) is int
        and type(o.flags) is int
        and type(o.expiry) is int
        and type(o.salt) is int
    ):
        try:
            return _ORDER_STRUCT.pack(o.trader, o.market, o.side, o.price, o.size, o.flags, o.expiry, o.salt)
        except struct.error:
            pass  # a field out of range: the checks below name it
    _check_address("trader", order.trader)
    return b"".join(
        (
            order.trader,
            _uint("market", order.market, 2),
            _uint("side", order.side, 1),
            _uint("price", order.price, 8),
            _uint("size", order.size, 8),
            _uint("flags", order.flags, 1),
            _uint("expiry", order.expiry, 8),
            _uint("salt", order.salt, 8),
        )
    )


def decode_order(data: bytes, start: int = 0) -> Order:
    """The order at `data[start : start + 56]`."""
    if 0 <= start and start + ORDER_BYTES <= len(data):  # the whole order: unpacked at once
        return Order(*_ORDER_STRUCT.unpack_from(data, start))
    b = start
    return Order(
        bytes(data[b : b + 20]),
        _u(data, b + 20, 2),
        data[b + 22],
        _u(data, b + 23, 8),
        _u(data, b + 31, 8),
        data[b + 39],
        _u(data, b + 40, 8),
        _u(data, b + 48, 8),
    )


def encode_signed_order(signed: SignedOrder) -> bytes:
    """Order (56) then signature (65)."""
    return encode_order(signed.order) + encode_signature(signed.sig)


def decode_signed_order(data: bytes, start: int = 0) -> SignedOrder:
    """The signed order at `data[start : start + 121]`."""
    return SignedOrder(decode_order(data, start), decode_signature(data, start + ORDER_BYTES))


def encode_leg(leg: Leg) -> bytes:
    """The 19-byte leg: market, side, price, size."""
    return (
        _uint("market", leg.market, 2)
        + _uint("side", leg.side, 1)
        + _uint("price", leg.price, 8)
        + _uint("size", leg.size, 8)
    )


def decode_leg(data: bytes, start: int = 0) -> Leg:
    """The leg at `data[start : start + 19]`."""
    return Leg(_u(data, start, 2), data[start + 2], _u(data, start + 3, 8), _u(data, start + 11, 8))


# ---- transactions ----------------------------------------------------------------------


def encode_tx(tx: Tx) -> bytes:
    """The canonical bytes of a transaction; raises DecodeError if a field does not fit."""
    kind = type(tx)
    if kind is Deposit:
        assert isinstance(tx, Deposit)
        _check_address("to", tx.to)
        return (
            bytes((TX_TYPE_DEPOSIT,))
            + _uint("queue_index", tx.queue_index, 8)
            + tx.to
            + _uint("amount", tx.amount, 32)
        )
    if kind is Transfer or kind is Withdraw:
        assert isinstance(tx, Transfer | Withdraw)
        _check_address("from", tx.sender)
        _check_address("to", tx.to)
        return b"".join(
            (
                bytes((TX_TYPE_TRANSFER if kind is Transfer else TX_TYPE_WITHDRAW,)),
                tx.sender,
                tx.to,
                _uint("amount", tx.amount, 32),
                _uint("nonce", tx.nonce, 8),
                encode_signature(Signature(tx.r, tx.s, tx.v)),
            )
        )
    if kind is Fill:
        assert isinstance(tx, Fill)
        return (
            bytes((TX_TYPE_FILL,))
            + encode_signed_order(tx.maker)
            + encode_signed_order(tx.taker)
            + _uint("size", tx.size, 8)
        )
    if kind is Cancel:
        assert isinstance(tx, Cancel)
        return bytes((TX_TYPE_CANCEL,)) + encode_order(tx.order) + encode_signature(tx.sig)
    if kind is OracleUpdate:
        assert isinstance(tx, OracleUpdate)
        if not 1 <= len(tx.prices) <= MAX_PRICE_SIGNATURES:
            raise DecodeError(f"an oracle update carries 1..{MAX_PRICE_SIGNATURES} prices")
        parts = [bytes((TX_TYPE_ORACLE_UPDATE,)), _uint("market", tx.market, 2), bytes((len(tx.prices),))]
        for p in tx.prices:
            parts += [
                _uint("mark", p.mark, 8),
                _uint("index", p.index, 8),
                _uint("timestamp", p.timestamp, 8),
                encode_signature(p.sig),
            ]
        return b"".join(parts)
    if kind is Funding:
        assert isinstance(tx, Funding)
        return bytes((TX_TYPE_FUNDING,)) + _uint("market", tx.market, 2) + _uint("since", tx.since, 8)
    if kind is Liquidate:
        assert isinstance(tx, Liquidate)
        _check_address("liquidator", tx.liquidator)
        _check_address("account", tx.account)
        return b"".join(
            (
                bytes((TX_TYPE_LIQUIDATE,)),
                tx.liquidator,
                tx.account,
                _uint("market", tx.market, 2),
                _uint("size", tx.size, 8),
                _uint("nonce", tx.nonce, 8),
                encode_signature(tx.sig),
            )
        )
    if kind is Deleverage:
        assert isinstance(tx, Deleverage)
        _check_address("account", tx.account)
        _check_address("counterparty", tx.counterparty)
        return b"".join(
            (
                bytes((TX_TYPE_DELEVERAGE,)),
                tx.account,
                tx.counterparty,
                _uint("market", tx.market, 2),
                _uint("nonce", tx.nonce, 8),
            )
        )
    if kind is BundleFill:
        assert isinstance(tx, BundleFill)
        b = tx.bundle
        _check_address("trader", b.trader)
        if not 1 <= len(b.legs) <= MAX_LEGS or len(tx.makers) != len(b.legs):
            raise DecodeError(f"a bundle has 1..{MAX_LEGS} legs, each with one maker order")
        return b"".join(
            (
                bytes((TX_TYPE_BUNDLE_FILL,)),
                b.trader,
                _uint("expiry", b.expiry, 8),
                _uint("salt", b.salt, 8),
                bytes((len(b.legs),)),
                *(encode_leg(leg) for leg in b.legs),
                encode_signature(tx.sig),
                *(encode_signed_order(m) for m in tx.makers),
            )
        )
    if kind is L1Message:
        assert isinstance(tx, L1Message)
        raw = bytes((TX_TYPE_L1_MESSAGE,)) + _uint("queue_index", tx.queue_index, 8) + tx.payload
        if not tx.payload or len(raw) > MAX_TX_BYTES:
            raise DecodeError(f"a message payload is 1..{MAX_TX_BYTES - L1_MESSAGE_TX_HEADER_BYTES} bytes")
        return raw
    if kind is ForcedTx:
        assert isinstance(tx, ForcedTx)
        if type(tx.tx) is not bytes:
            raise DecodeError("a forced transaction's inner transaction is bytes")
        raw = bytes((TX_TYPE_FORCED,)) + _uint("queue_index", tx.queue_index, 8) + tx.tx
        if not tx.tx or len(raw) > MAX_TX_BYTES:
            raise DecodeError(f"a forced transaction is 1..{MAX_TX_BYTES - FORCED_TX_HEADER_BYTES} bytes")
        return raw
    raise DecodeError(f"not a transaction: {kind.__name__}")


def _need(n: int, expected: int, what: str) -> None:
    if n != expected:
        raise DecodeError(f"{what} is {expected} bytes, got {n}")


def decode_tx(raw: bytes) -> Tx:
    """Decode canonical bytes; raises DecodeError on an unknown type or a wrong length."""
    if not raw:
        raise DecodeError("empty transaction")
    kind = raw[0]
    n = len(raw)
    if n > MAX_TX_BYTES:
        raise DecodeError(f"a transaction is at most {MAX_TX_BYTES} bytes, got {n}")
    if kind == TX_TYPE_FILL:
        _need(n, FILL_TX_BYTES, "a fill")
        return Fill(
            decode_signed_order(raw, 1), decode_signed_order(raw, 1 + SIGNED_ORDER_BYTES), _u(raw, 243, 8)
        )
    if kind == TX_TYPE_TRANSFER or kind == TX_TYPE_WITHDRAW:
        _need(n, SIGNED_TX_BYTES, "a signed transfer or withdrawal")
        cls = Transfer if kind == TX_TYPE_TRANSFER else Withdraw
        return cls(
            bytes(raw[1:21]),
            bytes(raw[21:41]),
            _u(raw, 41, 32),
            _u(raw, 73, 8),
            _u(raw, 81, 32),
            _u(raw, 113, 32),
            raw[145],
        )
    if kind == TX_TYPE_DEPOSIT:
        _need(n, DEPOSIT_TX_BYTES, "a deposit")
        return Deposit(_u(raw, 1, 8), bytes(raw[9:29]), _u(raw, 29, 32))
    if kind == TX_TYPE_CANCEL:
        _need(n, CANCEL_TX_BYTES, "a cancel")
        return Cancel(decode_order(raw, 1), decode_signature(raw, 1 + ORDER_BYTES))
    if kind == TX_TYPE_ORACLE_UPDATE:
        if n < ORACLE_TX_HEADER_BYTES:
            raise DecodeError("an oracle update is too short")
        count = raw[3]
        if not 1 <= count <= MAX_PRICE_SIGNATURES:
            raise DecodeError(f"an oracle update carries 1..{MAX_PRICE_SIGNATURES} prices, got {count}")
        _need(n, ORACLE_TX_HEADER_BYTES + PRICE_ENTRY_BYTES * count, "this oracle update")
        prices = []
        for i in range(count):
            b = ORACLE_TX_HEADER_BYTES + PRICE_ENTRY_BYTES * i
            prices.append(
                PriceEntry(
                    _u(raw, b, 8), _u(raw, b + 8, 8), _u(raw, b + 16, 8), decode_signature(raw, b + 24)
                )
            )
        return OracleUpdate(_u(raw, 1, 2), tuple(prices))
    if kind == TX_TYPE_FUNDING:
        _need(n, FUNDING_TX_BYTES, "a funding step")
        return Funding(_u(raw, 1, 2), _u(raw, 3, 8))
    if kind == TX_TYPE_LIQUIDATE:
        _need(n, LIQUIDATE_TX_BYTES, "a liquidation")
        return Liquidate(
            bytes(raw[1:21]),
            bytes(raw[21:41]),
            _u(raw, 41, 2),
            _u(raw, 43, 8),
            _u(raw, 51, 8),
            decode_signature(raw, 59),
        )
    if kind == TX_TYPE_DELEVERAGE:
        _need(n, DELEVERAGE_TX_BYTES, "a deleverage")
        return Deleverage(bytes(raw[1:21]), bytes(raw[21:41]), _u(raw, 41, 2), _u(raw, 43, 8))
    if kind == TX_TYPE_BUNDLE_FILL:
        if n < BUNDLE_TX_HEADER_BYTES:
            raise DecodeError("a bundle fill is too short")
        count = raw[37]
        if not 1 <= count <= MAX_LEGS:
            raise DecodeError(f"a bundle has 1..{MAX_LEGS} legs, got {count}")
        _need(n, BUNDLE_TX_HEADER_BYTES + SIGNATURE_BYTES + BUNDLE_LEG_TX_BYTES * count, "this bundle fill")
        legs = tuple(decode_leg(raw, BUNDLE_TX_HEADER_BYTES + LEG_BYTES * i) for i in range(count))
        sig_at = BUNDLE_TX_HEADER_BYTES + LEG_BYTES * count
        makers_at = sig_at + SIGNATURE_BYTES
        makers = tuple(decode_signed_order(raw, makers_at + SIGNED_ORDER_BYTES * i) for i in range(count))
        bundle = Bundle(bytes(raw[1:21]), legs, _u(raw, 21, 8), _u(raw, 29, 8))
        return BundleFill(bundle, decode_signature(raw, sig_at), makers)
    if kind == TX_TYPE_L1_MESSAGE:
        if n <= L1_MESSAGE_TX_HEADER_BYTES:
            raise DecodeError("an L1 message has a payload of at least one byte")
        return L1Message(_u(raw, 1, 8), bytes(raw[L1_MESSAGE_TX_HEADER_BYTES:]))
    if kind == TX_TYPE_FORCED:
        if n <= FORCED_TX_HEADER_BYTES:
            raise DecodeError("a forced transaction carries an inner transaction of at least one byte")
        return ForcedTx(_u(raw, 1, 8), bytes(raw[FORCED_TX_HEADER_BYTES:]))
    raise DecodeError(f"unknown transaction type 0x{kind:02x}")


def tx_hash(raw: bytes) -> bytes:
    """keccak of the encoded transaction: the sequencer's id for it."""
    return keccak(raw)


# ---- governance payloads ---------------------------------------------------------------


def encode_market_params(params: MarketParams) -> bytes:
    """The 52-byte body of SetMarket after the market id (protocol section 3, L1Message)."""
    p = params
    return b"".join(
        (
            _uint("tick_size", p.tick_size, 8),
            _uint("lot_size", p.lot_size, 8),
            _uint("max_position", p.max_position, 8),
            _uint("imr_bps", p.imr_bps, 2),
            _uint("mmr_bps", p.mmr_bps, 2),
            _int16("maker_fee_bps", p.maker_fee_bps),
            _int16("taker_fee_bps", p.taker_fee_bps),
            _uint("liquidation_penalty_bps", p.liquidation_penalty_bps, 2),
            _uint("breaker_bps", p.breaker_bps, 2),
            _uint("max_funding_bps", p.max_funding_bps, 2),
            _uint("funding_interval", p.funding_interval, 4),
            _uint("breaker_window", p.breaker_window, 4),
            _uint("max_oracle_age", p.max_oracle_age, 4),
        )
    )


def _int16(name: str, value: int) -> bytes:
    if type(value) is not int or not -(2**15) <= value < 2**15:
        raise DecodeError(f"{name} out of range")
    return value.to_bytes(2, "big", signed=True)


def encode_message(message: GovernanceMessage) -> bytes:
    """The payload of a governance message (`kind(1) || body`)."""
    if type(message) is SetMarket:
        return (
            bytes((MSG_SET_MARKET,))
            + _uint("market", message.market, 2)
            + encode_market_params(message.params)
        )
    if type(message) is SetCommittee:
        c = message.committee
        if not 0 <= len(c.members) <= 255:
            raise DecodeError("too many members")
        for m in c.members:
            _check_address("member", m)
        return (
            bytes((MSG_SET_COMMITTEE,))
            + _uint("threshold", c.threshold, 1)
            + bytes((len(c.members),))
            + b"".join(c.members)
        )
    raise DecodeError(f"not a governance message: {type(message).__name__}")


def decode_message(payload: bytes) -> GovernanceMessage:
    """Decode a governance payload; raises DecodeError when it does not decode."""
    if not payload:
        raise DecodeError("empty payload")
    kind = payload[0]
    if kind == MSG_SET_MARKET:
        _need(len(payload), SET_MARKET_PAYLOAD_BYTES, "a SetMarket payload")
        b = 3
        params = MarketParams(
            tick_size=_u(payload, b, 8),
            lot_size=_u(payload, b + 8, 8),
            max_position=_u(payload, b + 16, 8),
            imr_bps=_u(payload, b + 24, 2),
            mmr_bps=_u(payload, b + 26, 2),
            maker_fee_bps=_s(payload, b + 28, 2),
            taker_fee_bps=_s(payload, b + 30, 2),
            liquidation_penalty_bps=_u(payload, b + 32, 2),
            breaker_bps=_u(payload, b + 34, 2),
            max_funding_bps=_u(payload, b + 36, 2),
            funding_interval=_u(payload, b + 38, 4),
            breaker_window=_u(payload, b + 42, 4),
            max_oracle_age=_u(payload, b + 46, 4),
        )
        return SetMarket(_u(payload, 1, 2), params)
    if kind == MSG_SET_COMMITTEE:
        if len(payload) < 3:
            raise DecodeError("a SetCommittee payload is too short")
        count = payload[2]
        _need(len(payload), 3 + 20 * count, "this SetCommittee payload")
        members = tuple(bytes(payload[3 + 20 * i : 23 + 20 * i]) for i in range(count))
        return SetCommittee(Committee(payload[1], members))
    raise DecodeError(f"unknown message kind 0x{kind:02x}")


def message_hash(index: int, payload: bytes) -> bytes:
    """`keccak(word(index) || word(2^256 - 1) || keccak(payload))`, as the Bridge stores it."""
    return keccak(index.to_bytes(32, "big") + MESSAGE_TAG.to_bytes(32, "big") + keccak(payload))


def forced_hash(index: int, tx: bytes) -> bytes:
    """`keccak(word(index) || word(2^256 - 2) || keccak(tx))`, as the Bridge stores it."""
    return keccak(index.to_bytes(32, "big") + FORCED_TAG.to_bytes(32, "big") + keccak(tx))


def forced_inner(tx: ForcedTx) -> Transfer | Withdraw | Cancel:
    """The inner transaction of a ForcedTx; raises DecodeError unless it decodes to a Transfer, a
    Withdraw or a Cancel (the only user transactions that can be forced: nothing else is ever
    applied)."""
    inner = decode_tx(tx.tx)
    if not isinstance(inner, Transfer | Withdraw | Cancel):
        raise DecodeError(f"a {type(inner).__name__} cannot be forced (only Transfer, Withdraw and Cancel)")
    return inner


def deposit_hash(index: int, to: bytes, amount: int) -> bytes:
    """`keccak(word(index) || word(to) || word(amount))`, as the Bridge stores it."""
    if len(to) != 20:
        raise ValueError("an address is 20 bytes")
    return keccak(index.to_bytes(32, "big") + _ZERO12 + to + amount.to_bytes(32, "big"))


# ---- leaf values -----------------------------------------------------------------------


def read_acct(value: bytes | None) -> Acct:
    """An Account leaf value (None = absent) as a working record: `int(collateral) ||
    word(nonce) || positions`, each position `word(market) || int(size) || int(open_notional) ||
    int(funding_snapshot)` (64 + 128 n bytes). The one decoder of the Account leaf."""
    if value is None:
        return Acct(0, 0, {})
    positions: dict[int, list[int]] = {}
    for b in range(ACCOUNT_HEAD_BYTES, len(value), POSITION_BYTES):
        positions[_from_bytes(value[b : b + 32], "big")] = [
            _from_bytes(value[b + 32 : b + 64], "big", signed=True),
            _from_bytes(value[b + 64 : b + 96], "big", signed=True),
            _from_bytes(value[b + 96 : b + 128], "big", signed=True),
        ]
    return Acct(_from_bytes(value[:32], "big", signed=True), _from_bytes(value[32:64], "big"), positions)


def write_acct(a: Acct) -> bytes:
    """The Account leaf value of a working record (positions by market ascending); the inverse of
    `read_acct` and the one encoder of the Account leaf."""
    parts = [a.collateral.to_bytes(32, "big", signed=True), a.nonce.to_bytes(32, "big")]
    positions = a.positions
    for m in sorted(positions):
        size, notional, snapshot = positions[m]
        parts.append(m.to_bytes(32, "big"))
        parts.append(size.to_bytes(32, "big", signed=True))
        parts.append(notional.to_bytes(32, "big", signed=True))
        parts.append(snapshot.to_bytes(32, "big", signed=True))
    return b"".join(parts)


def encode_account(account: Account) -> bytes:
    """The Account leaf value of an `Account` record (`write_acct`)."""
    return write_acct(Acct.of(account))


def decode_account(value: bytes) -> Account:
    """The `Account` record of an Account leaf value (`read_acct`); raises ValueError unless it is
    64 + 128 n bytes."""
    n = len(value)
    if n < ACCOUNT_HEAD_BYTES or (n - ACCOUNT_HEAD_BYTES) % POSITION_BYTES:
        raise ValueError("an account value is 64 + 128 n bytes")
    return read_acct(value).to_account()


def encode_market(m: Market) -> bytes:
    """One 128-byte market record (protocol section 2, "Market records")."""
    p = m.params
    return b"".join(
        (
            m.mark_price.to_bytes(8, "big"),
            m.index_price.to_bytes(8, "big"),
            m.oracle_time.to_bytes(8, "big"),
            m.halted_until.to_bytes(8, "big"),
            m.funding_index.to_bytes(16, "big", signed=True),
            m.last_funding_time.to_bytes(8, "big"),
            m.breaker_ref_time.to_bytes(8, "big"),
            p.tick_size.to_bytes(8, "big"),
            p.lot_size.to_bytes(8, "big"),
            p.max_position.to_bytes(8, "big"),
            m.breaker_ref_price.to_bytes(8, "big"),
            p.imr_bps.to_bytes(2, "big"),
            p.mmr_bps.to_bytes(2, "big"),
            p.maker_fee_bps.to_bytes(2, "big", signed=True),
            p.taker_fee_bps.to_bytes(2, "big", signed=True),
            p.liquidation_penalty_bps.to_bytes(2, "big"),
            p.breaker_bps.to_bytes(2, "big"),
            p.max_funding_bps.to_bytes(2, "big"),
            bytes(2),
            p.funding_interval.to_bytes(4, "big"),
            p.breaker_window.to_bytes(4, "big"),
            p.max_oracle_age.to_bytes(4, "big"),
            bytes(4),
        )
    )


def decode_market(value: bytes, start: int = 0) -> Market:
    """The market record at `value[start : start + 128]`."""
    b = start
    params = MarketParams(
        tick_size=_u(value, b + 64, 8),
        lot_size=_u(value, b + 72, 8),
        max_position=_u(value, b + 80, 8),
        imr_bps=_u(value, b + 96, 2),
        mmr_bps=_u(value, b + 98, 2),
        maker_fee_bps=_s(value, b + 100, 2),
        taker_fee_bps=_s(value, b + 102, 2),
        liquidation_penalty_bps=_u(value, b + 104, 2),
        breaker_bps=_u(value, b + 106, 2),
        max_funding_bps=_u(value, b + 108, 2),
        funding_interval=_u(value, b + 112, 4),
        breaker_window=_u(value, b + 116, 4),
        max_oracle_age=_u(value, b + 120, 4),
    )
    return Market(
        params=params,
        mark_price=_u(value, b, 8),
        index_price=_u(value, b + 8, 8),
        oracle_time=_u(value, b + 16, 8),
        halted_until=_u(value, b + 24, 8),
        funding_index=_s(value, b + 32, 16),
        last_funding_time=_u(value, b + 48, 8),
        breaker_ref_time=_u(value, b + 56, 8),
        breaker_ref_price=_u(value, b + 88, 8),
    )


def encode_markets(markets: tuple[Market, ...] | list[Market]) -> bytes:
    """The Markets leaf value: every record in market-id order."""
    return b"".join(encode_market(m) for m in markets)


def decode_markets(value: bytes) -> tuple[Market, ...]:
    """Inverse of `encode_markets`."""
    if len(value) % MARKET_RECORD_BYTES:
        raise ValueError("a Markets value is 128 n bytes")
    return tuple(decode_market(value, b) for b in range(0, len(value), MARKET_RECORD_BYTES))


def encode_order_state(state: OrderState) -> bytes:
    """Order leaf value: `word(filled) || word(cancelled)`."""
    return state.filled.to_bytes(32, "big") + (1 if state.cancelled else 0).to_bytes(32, "big")


def decode_order_state(value: bytes) -> OrderState:
    """Inverse of `encode_order_state`."""
    if len(value) != 64:
        raise ValueError("an order value is 64 bytes")
    return OrderState(_u(value, 0, 32), _u(value, 32, 32) != 0)


def encode_committee(c: Committee) -> bytes:
    """Oracle leaf value: `word(threshold) || word(member)...`."""
    return c.threshold.to_bytes(32, "big") + b"".join(_ZERO12 + m for m in c.members)


def decode_committee(value: bytes) -> Committee:
    """Inverse of `encode_committee`."""
    if len(value) < 32 or len(value) % 32:
        raise ValueError("an Oracle value is 32 (n + 1) bytes")
    return Committee(
        _u(value, 0, 32), tuple(bytes(value[b + 12 : b + 32]) for b in range(32, len(value), 32))
    )


def encode_word(value: int) -> bytes:
    """A one-word leaf value (Global, Insurance)."""
    return value.to_bytes(32, "big")


def decode_word(value: bytes) -> int:
    """Inverse of `encode_word` (32 bytes)."""
    if len(value) != 32:
        raise ValueError("a one-word value is 32 bytes")
    return _from_bytes(value, "big")


def encode_global(next_queue_index: int) -> bytes:
    """Global leaf value: `word(next_queue_index)`."""
    return encode_word(next_queue_index)


def decode_global(value: bytes) -> int:
    """Inverse of `encode_global` (32 bytes)."""
    return decode_word(value)


def encode_withdrawal_value(l1_recipient: bytes, amount: int) -> bytes:
    """Withdrawal leaf value: `word(l1_recipient) || word(amount)`."""
    if len(l1_recipient) != 20:
        raise ValueError("an address is 20 bytes")
    return _ZERO12 + l1_recipient + amount.to_bytes(32, "big")


def decode_withdrawal_value(value: bytes) -> tuple[bytes, int]:
    """Inverse of `encode_withdrawal_value`: `(l1_recipient, amount)`."""
    if len(value) != 64 or value[:12] != _ZERO12:
        raise ValueError("a withdrawal value is word(address) || word(amount)")
    return bytes(value[12:32]), _from_bytes(value[32:], "big")
