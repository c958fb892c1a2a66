"""Vectors that pin the rules docs/protocol.md states exactly and no other vector pinned.

Each vector is (pre-state, transaction, expected outcome): the post state (or the typed error, with
the state unchanged). Expected values are worked out by hand in the comments from the fixtures'
round numbers (`exchange_fixtures`: ETH tick 1, lot 10, IMR 10 %, MMR 5 %, maker -10 bps, taker
20 bps, penalty 100 bps; BTC tick 5, lot 1, IMR 20 %, MMR 10 %, maker 0, taker 10 bps), never by
calling the state machine. The rules, by protocol section 3:

- a Fill's (and a bundle's) margin is checked after its fees, rebates included;
- only a market where an account's position increases must be fresh (and not halted);
- a BundleFill's maker orders pass every order rule (side, flags, tick and lot of the order
  itself, liveness, not cancelled), a maker may be POST_ONLY but not IOC, and a maker order's
  REDUCE_ONLY binds its trader in that order's market only;
- Liquidate: the Insurance that pays a debt includes the penalty just paid; MAX_POSITIONS,
  max_position and freshness (of the market only) bind the liquidator;
- Deleverage: the bankruptcy price's range (a short may close at 0, a long above 2**64) and the
  counterparty's only check (equity >= 0 after: no margin, no freshness of its other markets);
- a Withdraw's leaf is keyed by the transaction's own (signed) nonce;
- decoding: which bytes are undecodable (touch nothing) and which decode and break a rule.
"""

from __future__ import annotations

from dataclasses import replace

from exchange_fixtures import (
    BTC,
    BTC_PARAMS,
    ETH,
    MARKETS,
    NOW,
    TRADERS,
    acct,
    bundle_fill,
    bundle_key,
    cancel,
    ctx,
    digest,
    leaves,
    liquidate,
    market,
    markets_with,
    order,
    price,
    trader_key,
)
from stf_vectors import CONFIG, Vector

from sequencer.stf.codec import (
    encode_order_state,
    encode_tx,
    encode_withdrawal_value,
    encode_word,
)
from sequencer.stf.constants import (
    FLAG_IOC,
    FLAG_POST_ONLY,
    FLAG_REDUCE_ONLY,
    SIDE_BUY,
    SIDE_SELL,
    UINT64_MAX,
)
from sequencer.stf.eip712 import sign_transfer, sign_withdraw
from sequencer.stf.keys import account_key, insurance_key, order_key, withdrawal_key
from sequencer.stf.types import (
    Deleverage,
    Deposit,
    Fill,
    ForcedTx,
    L1Context,
    L1Message,
    Leg,
    OracleUpdate,
    OrderState,
    SignedOrder,
)

A, B, C, D, E = TRADERS[:5]
BUY, SELL = SIDE_BUY, SIDE_SELL
L1_RECIPIENT = bytes.fromhex("00000000000000000000000000000000000e0e17")


def filled(n: int, cancelled: bool = False) -> bytes:
    """An Order leaf value."""
    return encode_order_state(OrderState(n, cancelled))


def deleverage(account: bytes, counterparty: bytes, market_id: int, nonce: int = 0) -> Deleverage:
    """A Deleverage of `account` (at its nonce `nonce`, which the deleverage consumes)."""
    return Deleverage(account, counterparty, market_id, nonce)


def build_spec_vectors() -> list[Vector]:
    """All the vectors of this module (deterministic)."""
    vectors: list[Vector] = []

    def ok(
        name: str, pre: dict[bytes, bytes], tx: object, writes: dict[bytes, bytes], c: L1Context | None = None
    ) -> None:
        raw = tx if isinstance(tx, bytes) else encode_tx(tx)  # type: ignore[arg-type]
        vectors.append(Vector(name, pre, raw, c or ctx(), None, {**pre, **writes}))

    def bad(name: str, pre: dict[bytes, bytes], tx: object, code: str, c: L1Context | None = None) -> None:
        raw = tx if isinstance(tx, bytes) else encode_tx(tx)  # type: ignore[arg-type]
        vectors.append(Vector(name, pre, raw, c or ctx(), code, dict(pre)))

    stale_eth = markets_with(ETH, oracle_time=NOW - 61)
    stale_btc = markets_with(BTC, oracle_time=NOW - 61)
    halted_btc = markets_with(BTC, halted_until=NOW + 1)

    # ---- Fill: margin after fees ------------------------------------------------------
    # B sells 100 @ 100 to A. A's equity after the trade is its collateral (bought at the mark),
    # IMR ceil(10,000 * 10 %) = 1,000; the taker fee is 20. With 1,019: 999 after the fee.
    ask, bid = order(1, ETH, SELL, 100, 100), order(0, ETH, BUY, 100, 100)
    opened = {
        account_key(B): acct(100_010, 0, (ETH, -100, -10_000)),
        order_key(digest(ask)): filled(100),
        order_key(digest(bid)): filled(100),
        insurance_key(): encode_word(1_010),
    }
    bad(
        "fill__margin_after_fees__taker_fee_breaks_it",
        leaves({A: acct(1_019), B: acct(100_000)}, insurance=1_000),
        Fill(ask, bid, 100),
        "insufficient_margin",
    )
    ok(
        "fill__margin_after_fees__taker_exactly_at_initial_margin",
        leaves({A: acct(1_020), B: acct(100_000)}, insurance=1_000),
        Fill(ask, bid, 100),
        {**opened, account_key(A): acct(1_000, 0, (ETH, 100, 10_000))},
    )
    # The maker B with 990: 990 < 1,000 before its rebate of 10, 1,000 after it.
    ok(
        "fill__margin_after_fees__maker_rebate_counts",
        leaves({A: acct(100_000), B: acct(990)}, insurance=1_000),
        Fill(ask, bid, 100),
        {
            **opened,
            account_key(A): acct(99_980, 0, (ETH, 100, 10_000)),
            account_key(B): acct(1_000, 0, (ETH, -100, -10_000)),
        },
    )
    bad(
        "fill__margin_after_fees__maker_one_short_after_its_rebate",
        leaves({A: acct(100_000), B: acct(989)}, insurance=1_000),
        Fill(ask, bid, 100),
        "insufficient_margin",
    )

    # ---- Fill: which markets must be fresh ---------------------------------------------
    # ETH stale; A long 100 @ 10,000 sells 40 @ 100 to B short 100 @ -10,000: both reduce.
    # A: removed 4,000, realized 0, taker fee ceil(4,000 * 0.2 %) = 8. B: removed -4,000,
    # realized 0, rebate 4. Insurance +4.
    b_bid, a_ask = order(1, ETH, BUY, 100, 40), order(0, ETH, SELL, 100, 40)
    ok(
        "fill__stale_market_both_reducing__allowed",
        leaves(
            {A: acct(100_000, 0, (ETH, 100, 10_000)), B: acct(100_000, 0, (ETH, -100, -10_000))},
            markets=stale_eth,
            insurance=1_000,
        ),
        Fill(b_bid, a_ask, 40),
        {
            account_key(A): acct(99_992, 0, (ETH, 60, 6_000)),
            account_key(B): acct(100_004, 0, (ETH, -60, -6_000)),
            order_key(digest(b_bid)): filled(40),
            order_key(digest(a_ask)): filled(40),
            insurance_key(): encode_word(1_004),
        },
    )
    # BTC stale; A holds 1 BTC and opens ETH (fresh): only ETH must be fresh.
    ok(
        "fill__other_market_stale__opening_allowed",
        leaves({A: acct(100_000, 0, (BTC, 1, 5_000)), B: acct(100_000)}, markets=stale_btc, insurance=1_000),
        Fill(ask, bid, 100),
        {**opened, account_key(A): acct(99_980, 0, (ETH, 100, 10_000), (BTC, 1, 5_000))},
    )

    # ---- BundleFill: the maker orders ---------------------------------------------------
    # A buys 100 ETH (limit 101) from B's ask at 100 and sells 2 BTC (limit 4,990) to D's bid at
    # 5,000. ETH: taker fee 20, B rebate 10. BTC: notional 10,000, taker fee 10, maker fee 0.
    bundle_base = leaves({A: acct(100_000), B: acct(100_000), D: acct(50_000)}, insurance=1_000)
    legs = [Leg(ETH, BUY, 101, 100), Leg(BTC, SELL, 4_990, 2)]
    btc_bid = order(3, BTC, BUY, 5_000, 2)

    def two_legs(eth_maker: SignedOrder, btc_maker: SignedOrder, salt: int = 0) -> tuple[object, dict]:
        bundle = bundle_fill(0, legs, [eth_maker, btc_maker], salt=salt)
        return bundle, {
            account_key(A): acct(99_970, 0, (ETH, 100, 10_000), (BTC, -2, -10_000)),
            account_key(B): acct(100_010, 0, (ETH, -100, -10_000)),
            account_key(D): acct(50_000, 0, (BTC, 2, 10_000)),
            order_key(digest(eth_maker)): filled(100),
            order_key(digest(btc_maker)): filled(2),
            bundle_key(bundle): filled(1),  # type: ignore[arg-type]
            insurance_key(): encode_word(1_020),
        }

    post_only_ask = order(1, ETH, SELL, 100, 100, flags=FLAG_POST_ONLY)
    ok("bundle__maker_post_only__allowed", bundle_base, *two_legs(post_only_ask, btc_bid))
    for name, flags in (
        ("bundle__maker_ioc", FLAG_IOC),
        ("bundle__maker_post_only_and_ioc", FLAG_POST_ONLY | FLAG_IOC),
        ("bundle__maker_unknown_flag", 8),
    ):
        bad(
            name,
            bundle_base,
            two_legs(order(1, ETH, SELL, 100, 100, flags=flags), btc_bid)[0],
            "invalid_order",
        )
    bad(
        "bundle__maker_side_out_of_range",
        bundle_base,
        two_legs(order(1, ETH, 2, 100, 100), btc_bid)[0],
        "invalid_order",
    )
    bad(
        "bundle__maker_for_another_market",
        bundle_base,
        two_legs(order(1, BTC, SELL, 100, 100), btc_bid)[0],
        "invalid_order",
    )
    # The maker's own price must be on the tick (BTC tick 5), though the leg's 4,990 is.
    bad(
        "bundle__maker_price_off_tick",
        bundle_base,
        two_legs(order(1, ETH, SELL, 100, 100), order(3, BTC, BUY, 5_002, 2))[0],
        "price_off_tick",
    )
    # The maker's own size must be on the lot (ETH lot 10), though the leg's 100 is.
    bad(
        "bundle__maker_order_size_off_lot",
        bundle_base,
        two_legs(order(1, ETH, SELL, 100, 105), btc_bid)[0],
        "size_off_lot",
    )
    bad(
        "bundle__maker_expired",
        bundle_base,
        two_legs(order(1, ETH, SELL, 100, 100, expiry=NOW), btc_bid)[0],
        "order_expired",
    )
    eth_ask = order(1, ETH, SELL, 100, 100)
    bad(
        "bundle__maker_cancelled",
        {**bundle_base, order_key(digest(eth_ask)): filled(0, cancelled=True)},
        two_legs(eth_ask, btc_bid)[0],
        "order_cancelled",
    )
    # D short 2 BTC @ -10,000 with a REDUCE_ONLY bid: buying 2 at 5,000 closes it (realized 0).
    ro_bid = order(3, BTC, BUY, 5_000, 2, flags=FLAG_REDUCE_ONLY)
    closing, writes = two_legs(eth_ask, ro_bid)
    ok(
        "bundle__maker_reduce_only_closing__allowed",
        {**bundle_base, account_key(D): acct(50_000, 0, (BTC, -2, -10_000))},
        closing,
        {**writes, account_key(D): acct(50_000)},
    )
    bad("bundle__maker_reduce_only_would_open", bundle_base, closing, "reduce_only")
    # B long 100 ETH @ 10,000 makes both legs: its REDUCE_ONLY ask closes the ETH long (realized
    # 0, rebate 10) and its plain bid opens 2 BTC: the flag binds the ETH leg only.
    ro_ask, b_btc_bid = order(1, ETH, SELL, 100, 100, flags=FLAG_REDUCE_ONLY), order(1, BTC, BUY, 5_000, 2)
    one_maker, writes = two_legs(ro_ask, b_btc_bid)
    del writes[account_key(D)]
    ok(
        "bundle__reduce_only_binds_only_its_own_leg",
        {**bundle_base, account_key(B): acct(100_000, 0, (ETH, 100, 10_000))},
        one_maker,
        {**writes, account_key(B): acct(100_010, 0, (BTC, 2, 10_000))},
    )
    # BTC stale (or halted); A long 2 BTC @ 10,000 and D short 2 BTC @ -10,000: the BTC leg
    # closes both (realized 0; A's fee 10). A's ETH leg opens in a fresh market.
    reducing, writes = two_legs(eth_ask, btc_bid)
    reducing_post = {
        **writes,
        account_key(A): acct(99_970, 0, (ETH, 100, 10_000)),
        account_key(D): acct(50_000),
    }
    for name, listed in (
        ("bundle__stale_market_reducing_leg__allowed", stale_btc),
        ("bundle__halted_market_reducing_leg__allowed", halted_btc),
    ):
        holders = {
            A: acct(100_000, 0, (BTC, 2, 10_000)),
            B: acct(100_000),
            D: acct(50_000, 0, (BTC, -2, -10_000)),
        }
        ok(name, leaves(holders, markets=listed, insurance=1_000), reducing, reducing_post)
    # The same bundle opening BTC positions (A short, D long) in the stale or halted market.
    for name, listed, code in (
        ("bundle__stale_market_increasing_leg", stale_btc, "stale_oracle"),
        ("bundle__halted_market_increasing_leg", halted_btc, "market_halted"),
    ):
        flat = {A: acct(100_000), B: acct(100_000), D: acct(50_000)}
        bad(name, leaves(flat, markets=listed, insurance=1_000), reducing, code)
    big = bundle_fill(0, [legs[0], Leg(BTC, SELL, 4_990, 1_001)], [eth_ask, order(3, BTC, BUY, 5_000, 1_001)])
    bad("bundle__leg_above_max_position", bundle_base, big, "position_limit")

    # ---- Liquidate --------------------------------------------------------------------
    # Mark 90: C (400, long 100 @ 10,000) has equity -600. Closing all 100 realizes -1,000
    # (collateral -600), penalty ceil(9,000 * 1 %) = 90 (-690). Insurance 600 + the 90 just paid
    # = 690 pays the debt of 690 exactly.
    sunk = markets_with(ETH, mark_price=90, index_price=90)
    ok(
        "liquidate__insurance_counts_the_penalty_just_paid",
        leaves({C: acct(400, 0, (ETH, 100, 10_000)), D: acct(50_000)}, markets=sunk, insurance=600),
        liquidate(3, C, ETH, 100),
        {
            account_key(C): acct(0),
            account_key(D): acct(50_000, 1, (ETH, 100, 9_000)),
            insurance_key(): encode_word(0),
        },
    )
    bad(
        "liquidate__insurance_plus_penalty_one_short",
        leaves({C: acct(400, 0, (ETH, 100, 10_000)), D: acct(50_000)}, markets=sunk, insurance=599),
        liquidate(3, C, ETH, 100),
        "not_liquidatable",
    )
    # Mark 100: C (400, long 100 @ 10,000) is below maintenance (500); D takes 50 at 100: C
    # realizes 0 and pays ceil(5,000 * 1 %) = 50.
    nine = MARKETS + [market(BTC_PARAMS, 5_000)] * 7
    others = [(m, 1, 5_000) for m in range(1, 9)]
    weak_c = acct(400, 0, (ETH, 100, 10_000))
    bad(
        "liquidate__liquidator_ninth_position",
        leaves({C: weak_c, D: acct(1_000_000, 0, *others)}, markets=nine, insurance=1_000),
        liquidate(3, C, ETH, 50),
        "position_limit",
    )
    ok(
        "liquidate__liquidator_eighth_position__allowed",
        leaves({C: weak_c, D: acct(1_000_000, 0, *others[:7])}, markets=nine, insurance=1_000),
        liquidate(3, C, ETH, 50),
        {
            account_key(C): acct(350, 0, (ETH, 50, 5_000)),
            account_key(D): acct(1_000_000, 1, (ETH, 50, 5_000), *others[:7]),
            insurance_key(): encode_word(1_050),
        },
    )
    ok(
        "liquidate__liquidator_holds_a_stale_market__allowed",
        leaves({C: weak_c, D: acct(50_000, 0, (BTC, 1, 5_000))}, markets=stale_btc, insurance=1_000),
        liquidate(3, C, ETH, 50),
        {
            account_key(C): acct(350, 0, (ETH, 50, 5_000)),
            account_key(D): acct(50_000, 1, (ETH, 50, 5_000), (BTC, 1, 5_000)),
            insurance_key(): encode_word(1_050),
        },
    )
    bad(
        "liquidate__liquidator_above_max_position",
        leaves({C: weak_c, D: acct(10**9, 0, (ETH, 999_960, 99_996_000))}, insurance=1_000),
        liquidate(3, C, ETH, 50),
        "position_limit",
    )

    # ---- Deleverage -------------------------------------------------------------------
    # Mark 110; C short 100 @ -10,000 with -9,950, no Insurance: equity -10,950. C - N = 50, so
    # the bankruptcy price is 50 // 100 = 0: C buys 100 at 0 (removed -10,000) and ends with 50
    # (and nonce 1: a deleverage consumes the account's nonce).
    # E long 200 @ 16,000 with 6,000 sells 100 at 0: removed 8,000 -> -2,000, equity
    # -2,000 + 11,000 - 8,000 = 1,000 >= 0.
    squeezed = markets_with(ETH, mark_price=110, index_price=110)
    ok(
        "deleverage__short_bankruptcy_price_zero",
        leaves(
            {C: acct(-9_950, 0, (ETH, -100, -10_000)), E: acct(6_000, 0, (ETH, 200, 16_000))},
            markets=squeezed,
        ),
        deleverage(C, E, ETH),
        {account_key(C): acct(50, 1), account_key(E): acct(-2_000, 0, (ETH, 100, 8_000))},
    )
    # Mark 90; C long 100 @ 10,000 with 400, Insurance 100: price ceil((10,000 - 500) / 100) = 95.
    # E short 200 @ -24,000 buys 100 at 95: removed -12,000, realized -9,500 + 12,000 = 2,500.
    # With -5,500: collateral -3,000, equity -3,000 - 9,000 + 12,000 = 0 (below any margin).
    bankrupt_c = acct(400, 0, (ETH, 100, 10_000))
    ok(
        "deleverage__counterparty_ends_at_zero_equity__allowed",
        leaves({C: bankrupt_c, E: acct(-5_500, 0, (ETH, -200, -24_000))}, markets=sunk, insurance=100),
        deleverage(C, E, ETH),
        {
            account_key(C): acct(0, 1),
            account_key(E): acct(-3_000, 0, (ETH, -100, -12_000)),
            insurance_key(): encode_word(0),
        },
    )
    bad(
        "deleverage__counterparty_one_below_zero_equity",
        leaves({C: bankrupt_c, E: acct(-5_501, 0, (ETH, -200, -24_000))}, markets=sunk, insurance=100),
        deleverage(C, E, ETH),
        "not_liquidatable",
    )
    ok(
        "deleverage__counterparty_other_market_stale__allowed",
        leaves(
            {C: bankrupt_c, E: acct(5_000, 0, (ETH, -200, -24_000), (BTC, 1, 5_000))},
            markets=[sunk[ETH], replace(sunk[BTC], oracle_time=NOW - 61)],
            insurance=100,
        ),
        deleverage(C, E, ETH),
        {
            account_key(C): acct(0, 1),
            account_key(E): acct(7_500, 0, (ETH, -100, -12_000), (BTC, 1, 5_000)),
            insurance_key(): encode_word(0),
        },
    )
    # Mark 90; C long 10 @ 1,000 with -2**70, no Insurance. 2**70 + 1,000 ends in 4, so the
    # price is p = (2**70 + 1,006) / 10 (above 2**64: no bound): C realizes 10 p - 1,000 and ends
    # with 6. E short 10 @ -1,000 with 2**71 buys at p: -10 p + 1,000 -> 2**70 - 6.
    assert (2**70 + 1_006) % 10 == 0 and (2**70 + 1_006) // 10 > UINT64_MAX
    ok(
        "deleverage__long_price_above_uint64",
        leaves({C: acct(-(2**70), 0, (ETH, 10, 1_000)), E: acct(2**71, 0, (ETH, -10, -1_000))}, markets=sunk),
        deleverage(C, E, ETH),
        {account_key(C): acct(6, 1), account_key(E): acct(2**70 - 6)},
    )

    # ---- Cancel: no field of the order is checked -------------------------------------------
    # An order no Fill could ever accept (side 7, unknown flags, unlisted market, price and size
    # 0) is cancelled all the same: its leaf becomes filled 0, cancelled.
    junk = order(1, 65_535, 7, 0, 0, flags=0xFF)
    ok(
        "cancel__order_fields_not_checked",
        leaves({}),
        cancel(1, junk),
        {order_key(digest(junk)): filled(0, cancelled=True)},
    )

    # ---- Withdraw: the leaf is keyed by the signed nonce ----------------------------------
    # A at nonce 5 withdraws 100 with nonce 5: Withdrawal(A, 5) is written, A's nonce becomes 6
    # (Withdrawal(A, 6) stays absent: the post state is exactly these leaves).
    ok(
        "withdraw__leaf_keyed_by_the_signed_nonce",
        leaves({A: acct(1_000, 5)}),
        sign_withdraw(trader_key(0), L1_RECIPIENT, 100, 5, CONFIG),
        {
            account_key(A): acct(900, 6),
            withdrawal_key(A, 5): encode_withdrawal_value(L1_RECIPIENT, 100),
        },
    )
    return vectors


SPEC_VECTORS = build_spec_vectors()


# ---- decoding ------------------------------------------------------------------------------


def _fill(maker: SignedOrder) -> bytes:
    return encode_tx(Fill(maker, order(0, ETH, BUY, 100, 100), 100))


def _sig(signed: SignedOrder, **fields: int) -> SignedOrder:
    return SignedOrder(signed.order, replace(signed.sig, **fields))


def build_decodable_invalid() -> list[tuple[str, bytes]]:
    """Bytes that decode (they touch their keys) although a field is out of any valid range: the
    rules refuse them."""
    ask = order(1, ETH, SELL, 100, 100)
    transfer = sign_transfer(trader_key(0), B, 10, 0, CONFIG)
    withdraw = sign_withdraw(trader_key(0), L1_RECIPIENT, 10, 0, CONFIG)
    bundle = bundle_fill(0, [Leg(ETH, 9, 101, 100)], [ask])
    return [
        ("fill_side_7", _fill(order(1, ETH, 7, 100, 100))),
        ("fill_flags_0xff", _fill(order(1, ETH, SELL, 100, 100, flags=0xFF))),
        ("fill_market_65535", _fill(order(1, 65_535, SELL, 100, 100))),
        ("fill_price_0_size_0", _fill(order(1, ETH, SELL, 0, 0))),
        ("fill_v_0", _fill(_sig(ask, v=0))),
        ("fill_r_max", _fill(_sig(ask, r=2**256 - 1))),
        ("fill_size_0", encode_tx(Fill(ask, order(0, ETH, BUY, 100, 100), 0))),
        ("transfer_amount_max", encode_tx(replace(transfer, amount=2**256 - 1))),
        ("transfer_v_0_s_max", encode_tx(replace(transfer, v=0, s=2**256 - 1))),
        ("transfer_to_self", encode_tx(sign_transfer(trader_key(0), A, 10, 0, CONFIG))),
        ("withdraw_to_zero_nonce_max", encode_tx(replace(withdraw, to=bytes(20), nonce=UINT64_MAX))),
        ("deposit_index_max_amount_0", encode_tx(Deposit(UINT64_MAX, bytes(20), 0))),
        ("liquidate_size_0_market_65535", encode_tx(liquidate(3, C, 65_535, 0))),
        ("oracle_mark_0", encode_tx(OracleUpdate(ETH, (price(0, ETH, 0, 100, NOW),)))),
        ("oracle_11_prices", encode_tx(OracleUpdate(ETH, (price(0, ETH, 100, 100, NOW),) * 11))),
        ("bundle_leg_side_9", encode_tx(bundle)),
        ("bundle_4_legs", encode_tx(bundle_fill(0, [Leg(ETH, BUY, 101, 100)] * 4, [ask] * 4))),
        ("message_unknown_kind", encode_tx(L1Message(0, b"\x7f"))),
        ("forced_garbage_inner", encode_tx(ForcedTx(0, b"\x07\x07"))),
        ("forced_inner_one_byte_short", encode_tx(ForcedTx(0, encode_tx(withdraw)[:-1]))),
        ("forced_inner_deposit", encode_tx(ForcedTx(0, encode_tx(Deposit(0, A, 1))))),
        ("forced_inner_cancel_one_byte_long", encode_tx(ForcedTx(0, encode_tx(cancel(1, ask)) + b"\x00"))),
    ]


def build_undecodable() -> list[tuple[str, bytes]]:
    """Bytes that do not decode (they touch nothing): an empty string, an unknown type byte, a
    wrong length for the type, a count out of range, an L1Message or ForcedTx without a body."""
    fill = _fill(order(1, ETH, SELL, 100, 100))
    transfer = encode_tx(sign_transfer(trader_key(0), B, 10, 0, CONFIG))
    deposit = encode_tx(Deposit(0, A, 1))
    cancelled = encode_tx(cancel(1, order(1, ETH, SELL, 100, 100)))
    liquidation = encode_tx(liquidate(3, C, ETH, 50))
    one_price = encode_tx(OracleUpdate(ETH, (price(0, ETH, 100, 100, NOW),)))
    one_leg = encode_tx(bundle_fill(0, [Leg(ETH, BUY, 101, 100)], [order(1, ETH, SELL, 100, 100)]))
    cases = [
        ("empty", b""),
        ("type_0x00", b"\x00" + bytes(60)),
        ("type_0x0d", b"\x0d" + bytes(60)),
        ("type_0xff", b"\xff"),
        ("deposit_short", deposit[:-1]),
        ("deposit_long", deposit + b"\x00"),
        ("transfer_short", transfer[:-1]),
        ("transfer_long", transfer + b"\x00"),
        ("withdraw_long", b"\x03" + transfer[1:] + b"\x00"),
        ("fill_short", fill[:-1]),
        ("fill_long", fill + b"\x00"),
        ("cancel_short", cancelled[:-1]),
        ("liquidate_long", liquidation + b"\x00"),
        ("oracle_count_0", one_price[:3] + b"\x00"),
        ("oracle_count_0_with_an_entry", one_price[:3] + b"\x00" + one_price[4:]),
        ("oracle_count_12", one_price[:3] + b"\x0c" + one_price[4:]),
        ("oracle_count_2_one_entry", one_price[:3] + b"\x02" + one_price[4:]),
        ("oracle_header_only_3_bytes", one_price[:3]),
        ("bundle_count_0", one_leg[:37] + b"\x00" + bytes(65)),
        ("bundle_count_5", one_leg[:37] + b"\x05" + bytes(103 + 140 * 5 - 38)),
        ("bundle_count_2_one_leg", one_leg[:37] + b"\x02" + one_leg[38:]),
        ("bundle_37_bytes", one_leg[:37]),
        ("message_without_payload", encode_tx(L1Message(0, b"\x01"))[:9]),
        ("forced_without_inner", encode_tx(ForcedTx(0, b"\x01"))[:9]),
    ]
    return cases


DECODABLE_INVALID = build_decodable_invalid()
UNDECODABLE = build_undecodable()
