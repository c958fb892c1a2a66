"""An exchange on a deployed rollup, built by real batches, for the fraud-proof tests and gas.

`build_exchange_scene` lists 16 markets and a 15-member oracle committee through the Bridge's
governor, funds traders by deposits, prices every market, and opens positions by fills so that
five traders hold 8 positions each (the worst case of a Fill and a 4-leg BundleFill), creates 512
more accounts by transfers (witnesses about 10 levels deep), then moves one market's price so that
one account is liquidatable and another bankrupt. Its `target` is one batch holding a transaction
of every type, each valid (`ok:<type>`) and each breaking a rule (`bad:<type>`; a forced
transaction whose inner transaction is refused still consumes its queue entry, so it is
`ok:forced_refused`), which the tests append (with one root corrupted, or none) on the scene's tip
and prove.

Expected values always come from `sequencer.stf`: every setup transaction is checked to apply,
and each target transaction to apply (or not) as its name says, with the state machine itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from contracts.bindings import Sender
from devnet.l1_harness import MIN_BOND_WEI, AppendedBatch, Harness
from sequencer.stf.codec import encode_message, encode_tx
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import (
    address_of,
    sign_bundle,
    sign_cancel,
    sign_liquidate,
    sign_order,
    sign_price,
    sign_transfer,
    sign_withdraw,
)
from sequencer.stf.hashing import keccak
from sequencer.stf.state import copy_state, get_account, get_markets
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import (
    Bundle,
    BundleFill,
    Cancel,
    ChainConfig,
    Committee,
    Deleverage,
    Deposit,
    Fill,
    ForcedTx,
    Funding,
    L1Message,
    Leg,
    MarketParams,
    OracleUpdate,
    Order,
    PriceEntry,
    SetCommittee,
    SetMarket,
    SignedOrder,
)

PARAMS = MarketParams(
    tick_size=1,
    lot_size=10,
    max_position=1_000_000,
    imr_bps=1_000,
    mmr_bps=500,
    maker_fee_bps=-10,
    taker_fee_bps=20,
    liquidation_penalty_bps=100,
    breaker_bps=1_500,
    max_funding_bps=50,
    funding_interval=60,
    breaker_window=60,
    max_oracle_age=3_600,
)
"""Every market: tick 1, lot 10, 10% / 5% margins, maker rebate 0.1%, taker 0.2%, prices good for
an hour (the scene spans a minute of funding and the tests)."""

N_MARKETS = 16
RISK_MARKET = 8
"""The market whose price falls: no breaker, so later fills there are not halted either."""
PRICE = 100
FALLEN_PRICE = 84
"""The risk market's price after the fall: C (long 1,000 with 20,000) is below maintenance, D
(long 1,000 with 11,000) is bankrupt beyond the Insurance fund."""

TARGET_NAMES = [
    "ok:deposit",
    "ok:l1message",
    "ok:forced_withdraw",
    "ok:forced_transfer",
    "ok:forced_cancel",
    "ok:forced_refused",
    "bad:forced",
    "ok:transfer",
    "bad:transfer",
    "ok:withdraw",
    "bad:withdraw",
    "ok:cancel",
    "bad:cancel",
    "ok:oracle_update",
    "bad:oracle_update",
    "ok:funding",
    "bad:funding",
    "ok:fill",
    "bad:fill",
    "ok:bundle_fill",
    "bad:bundle_fill",
    "ok:liquidate",
    "bad:liquidate",
    "ok:deleverage",
    "bad:deleverage",
]
"""The target batch's transactions, in order: `ok:<type>` applies, `bad:<type>` breaks a rule. The
valid Fill and BundleFill are the worst cases (five accounts of 8 positions, 4 legs, the largest
Markets value), the valid OracleUpdate carries 11 signatures. The forced withdrawal and transfer
come from accounts holding 8 positions (the margin check over every market); the forced cancel
is of a resting order of trader 2's."""

COMMITTEE_SIZE, COMMITTEE_THRESHOLD = 15, 3
MAX_SIGNATURES = 11

FILLER_ACCOUNTS = 512
"""Accounts created by transfers, so that witnesses are some levels deep (about 10)."""

TAKER, MAKERS = 0, (1, 2, 3, 4)
"""Trader 0 is short in markets 0..7 against traders 1..4 (long): five accounts, 8 positions each."""
C, D, E, LIQUIDATOR, RECIPIENT = 5, 6, 7, 8, 9
DEPOSITS = {
    TAKER: 10**9,
    **dict.fromkeys(MAKERS, 10**9),
    C: 20_000,
    D: 11_000,
    E: 10**9,
    LIQUIDATOR: 10**8,
    RECIPIENT: 1_000 + FILLER_ACCOUNTS,
}


def _filler(k: int) -> bytes:
    return keccak(b"exchange-scene-filler" + k.to_bytes(4, "big"))[:20]


def trader_key(i: int) -> bytes:
    return keccak(b"exchange-scene-trader" + bytes([i]))


def member_key(i: int) -> bytes:
    return keccak(b"exchange-scene-member" + bytes([i]))


def trader(i: int) -> bytes:
    return address_of(trader_key(i))


def _order(
    config: ChainConfig, i: int, market: int, side: int, price: int, size: int, salt: int
) -> SignedOrder:
    return sign_order(trader_key(i), Order(trader(i), market, side, price, size, 0, 0, salt), config)


def _prices(config: ChainConfig, market: int, price: int, at: int, members: range) -> OracleUpdate:
    return OracleUpdate(
        market,
        tuple(
            PriceEntry(price, price, at, sign_price(member_key(m), market, price, price, at, config))
            for m in members
        ),
    )


@dataclass
class ExchangeScene:
    """The scene's tip (after the setup batches) and the target batch."""

    h: Harness
    honest: Sender
    """The sequencer of the setup batches (never slashed)."""
    target: dict[str, bytes]
    """Name -> encoded transaction, in batch order."""
    queue_end: int
    """The target batch's `queue_end` (it consumes one deposit and one message)."""

    @property
    def names(self) -> list[str]:
        return list(self.target)

    def append_target(self, sequencer: Sender, corrupt: str | None = None) -> AppendedBatch:
        """Append the target batch on the tip (the honest state does not advance); with `corrupt`,
        that transaction's post root is wrong."""
        h = self.h
        l2_time = h.default_l2_time()
        txs = list(self.target.values())
        roots = h.honest_roots(txs, self.queue_end, l2_time=l2_time)
        self._check_outcomes(l2_time)
        if corrupt is not None:
            roots[self.names.index(corrupt)] = b"\x5a" * 32
        return h.append(sequencer, txs, queue_end=self.queue_end, l2_time=l2_time, roots=roots, advance=False)

    def _check_outcomes(self, l2_time: int) -> None:
        """Each `ok:` transaction applies and each `bad:` one is a no-op, in batch order."""
        work = copy_state(self.h.state)
        ctx = self.h.ctx(self.queue_end, l2_time)
        for name, raw in self.target.items():
            outcome = apply_tx(work, raw, ctx, self.h.config)
            assert outcome.applied == name.startswith("ok:"), (name, outcome.error)

    def new_sequencer(self, label: bytes) -> Sender:
        """A fresh bonded sequencer (a local key funded by the deployer)."""
        h = self.h
        sender = Sender.from_key(keccak(b"exchange-scene-sequencer" + label))
        funding = {"from": h.deployer.address, "to": sender.address, "value": 5 * MIN_BOND_WEI}
        h.w3.eth.send_transaction(funding)  # type: ignore[arg-type]
        h.bond(sender)
        return sender


def build_exchange_scene(h: Harness) -> ExchangeScene:
    """List the markets and committee, fund and position the traders, and prepare the target."""
    config = h.config
    honest = h.account(1)
    h.bond(honest)
    governor = h.deployer
    members = tuple(address_of(member_key(m)) for m in range(COMMITTEE_SIZE))

    # Batch 0: the governance messages and the deposits, in queue order.
    queued: list[bytes] = []
    payloads = [
        encode_message(SetMarket(m, PARAMS if m != RISK_MARKET else replace(PARAMS, breaker_bps=0)))
        for m in range(N_MARKETS)
    ]
    payloads.append(encode_message(SetCommittee(Committee(COMMITTEE_THRESHOLD, members))))
    for payload in payloads:
        index = h.bridge.queue_length()
        h.bridge.send_message(governor, payload)
        queued.append(encode_tx(L1Message(index, payload)))
    for i, amount in DEPOSITS.items():
        index = h.bridge.queue_length()
        h.deposit(trader(i), amount)
        queued.append(encode_tx(Deposit(index, trader(i), amount)))
    _append_valid(h, honest, queued, queue_end=h.bridge.queue_length())

    # Batch 1: a price for every market.
    now = h.default_l2_time()
    _append_valid(
        h,
        honest,
        [encode_tx(_prices(config, m, PRICE, now, range(3))) for m in range(N_MARKETS)],
        l2_time=now,
    )

    # Batch 2: trader 0 sells 10 to each of traders 1..4 in markets 0..7; C and D buy 1,000 in the
    # risk market from E.
    fills: list[bytes] = []
    salt = 0
    for m in range(8):
        for i in MAKERS:
            salt += 1
            bid = _order(config, i, m, SIDE_BUY, PRICE, 10, salt)
            ask = _order(config, TAKER, m, SIDE_SELL, PRICE, 10, salt)
            fills.append(encode_tx(Fill(bid, ask, 10)))
    for i in (C, D):
        ask = _order(config, E, RISK_MARKET, SIDE_SELL, PRICE, 1_000, i)
        bid = _order(config, i, RISK_MARKET, SIDE_BUY, PRICE, 1_000, i)
        fills.append(encode_tx(Fill(ask, bid, 1_000)))
    _append_valid(h, honest, fills)

    # Filler: the recipient pays 1 to each of `FILLER_ACCOUNTS` new accounts (deeper witnesses).
    for first in range(0, FILLER_ACCOUNTS, 256):
        payments = [
            encode_tx(sign_transfer(trader_key(RECIPIENT), _filler(k), 1, k, config))
            for k in range(first, min(first + 256, FILLER_ACCOUNTS))
        ]
        _append_valid(h, honest, payments)

    # A minute later (funding is due), every market is priced again and the risk market falls.
    h.travel_to(h.latest_timestamp() + PARAMS.funding_interval + 1)
    now = h.default_l2_time()
    updates = [
        encode_tx(_prices(config, m, FALLEN_PRICE if m == RISK_MARKET else PRICE, now, range(3)))
        for m in range(N_MARKETS)
    ]
    _append_valid(h, honest, updates, l2_time=now)

    # The target batch's queue entries: a deposit to a trader with positions, and a message.
    deposit_index = h.bridge.queue_length()
    h.deposit(trader(MAKERS[0]), 777)
    message_index = h.bridge.queue_length()
    new_params = replace(PARAMS, imr_bps=1_200, taker_fee_bps=25)
    message = encode_message(SetMarket(9, new_params))
    h.bridge.send_message(governor, message)
    forced_index = h.bridge.queue_length()
    for raw in _forced_inners(config):  # queued by someone else than the signer: anyone may
        h.bridge.force_tx(h.account(6), raw)
    h.travel_to(now + 2)  # the target's prices (at `now + 1`) are after the last ones
    target = _target(h, now + 1, deposit_index, message_index, message, forced_index)
    return ExchangeScene(h, honest, target, h.bridge.queue_length())


def _forced_inners(config: ChainConfig) -> list[bytes]:
    """The target's forced transactions, in queue order: a withdrawal and a transfer from accounts
    with 8 positions, a cancel of a resting order, and a withdrawal with a wrong nonce (refused:
    it only consumes its entry)."""
    resting = _order(config, MAKERS[1], 0, SIDE_SELL, 200, 10, 998).order
    return [
        encode_tx(sign_withdraw(trader_key(MAKERS[3]), b"\x0c" * 20, 5_000, 0, config)),
        encode_tx(sign_transfer(trader_key(TAKER), trader(RECIPIENT), 5_000, 0, config)),
        encode_tx(Cancel(resting, sign_cancel(trader_key(MAKERS[1]), resting, config))),
        encode_tx(sign_withdraw(trader_key(MAKERS[3]), b"\x0c" * 20, 5_000, 7, config)),
    ]


def _target(
    h: Harness, now: int, deposit_index: int, message_index: int, message: bytes, forced_index: int
) -> dict[str, bytes]:
    """One valid and one invalid transaction of each type, in an order where each valid one
    applies (checked by `ExchangeScene.append_target`)."""
    config = h.config
    t: dict[str, object] = {}
    t["ok:deposit"] = Deposit(deposit_index, trader(MAKERS[0]), 777)
    t["ok:l1message"] = L1Message(message_index, message)
    inners = _forced_inners(config)
    t["ok:forced_withdraw"] = ForcedTx(forced_index, inners[0])
    t["ok:forced_transfer"] = ForcedTx(forced_index + 1, inners[1])
    t["ok:forced_cancel"] = ForcedTx(forced_index + 2, inners[2])
    t["ok:forced_refused"] = ForcedTx(forced_index + 3, inners[3])
    t["bad:forced"] = ForcedTx(forced_index + 3, inners[3])  # its entry is already consumed
    t["ok:transfer"] = sign_transfer(trader_key(MAKERS[0]), trader(RECIPIENT), 5_000, 0, config)
    t["bad:transfer"] = sign_transfer(trader_key(C), trader(RECIPIENT), 10_000, 0, config)  # below margin
    t["ok:withdraw"] = sign_withdraw(trader_key(MAKERS[1]), b"\x0b" * 20, 5_000, 0, config)
    t["bad:withdraw"] = sign_withdraw(trader_key(MAKERS[1]), b"\x0b" * 20, 5_000, 7, config)  # nonce
    resting = _order(config, MAKERS[2], 0, SIDE_SELL, 200, 10, 999)
    t["ok:cancel"] = Cancel(resting.order, sign_cancel(trader_key(MAKERS[2]), resting.order, config))
    t["bad:cancel"] = Cancel(resting.order, sign_cancel(trader_key(MAKERS[3]), resting.order, config))
    members = range(MAX_SIGNATURES)
    t["ok:oracle_update"] = _prices(config, 10, PRICE + 1, now, members)
    t["bad:oracle_update"] = _prices(config, 11, PRICE + 1, now + 3_600, members)  # from the future
    since = get_markets(h.state)[1].last_funding_time  # the period market 1's funding settles from
    t["ok:funding"] = Funding(1, since)
    t["bad:funding"] = Funding(N_MARKETS, since)  # not listed
    # The worst-case Fill: trader 1 buys 10 more in market 0 from trader 0, both holding 8 positions.
    bid = _order(config, MAKERS[0], 0, SIDE_BUY, PRICE, 10, 1_001)
    ask = _order(config, TAKER, 0, SIDE_SELL, PRICE, 10, 1_001)
    t["ok:fill"] = Fill(bid, ask, 10)
    t["bad:fill"] = Fill(bid, ask, 20)  # above both orders' size
    # The worst-case BundleFill: trader 0 buys back 10 in markets 0..3 from traders 1..4.
    legs = tuple(Leg(m, SIDE_BUY, PRICE, 10) for m in range(4))
    makers = tuple(_order(config, i, m, SIDE_SELL, PRICE, 10, 2_000 + m) for m, i in enumerate(MAKERS))
    bundle = Bundle(trader(TAKER), legs, 0, 1)
    t["ok:bundle_fill"] = BundleFill(bundle, sign_bundle(trader_key(TAKER), bundle, config), makers)
    tampered = replace(bundle, salt=2)
    t["bad:bundle_fill"] = BundleFill(tampered, sign_bundle(trader_key(TAKER), bundle, config), makers)
    t["ok:liquidate"] = sign_liquidate(trader_key(LIQUIDATOR), trader(C), RISK_MARKET, 500, 0, config)
    t["bad:liquidate"] = sign_liquidate(trader_key(LIQUIDATOR), trader(E), RISK_MARKET, 500, 1, config)
    nonce_c, nonce_d = (get_account(h.state, trader(i)).nonce for i in (C, D))  # which it consumes
    t["ok:deleverage"] = Deleverage(trader(D), trader(E), RISK_MARKET, nonce_d)
    t["bad:deleverage"] = Deleverage(trader(C), trader(E), RISK_MARKET, nonce_c)  # not bankrupt
    assert list(t) == TARGET_NAMES
    return {name: encode_tx(tx) for name, tx in t.items()}  # type: ignore[arg-type]


def _append_valid(
    h: Harness,
    sequencer: Sender,
    txs: list[bytes],
    *,
    queue_end: int | None = None,
    l2_time: int | None = None,
) -> AppendedBatch:
    """Append an honest batch whose every transaction applies."""
    tip = h.rollup.tip()
    if l2_time is None:
        l2_time = h.default_l2_time()
    work = copy_state(h.state)
    ctx = h.ctx(tip.queue_end if queue_end is None else queue_end, l2_time)
    for raw in txs:
        outcome = apply_tx(work, raw, ctx, h.config)
        assert outcome.applied, outcome.error
    return h.append(sequencer, txs, queue_end=queue_end, l2_time=l2_time)
