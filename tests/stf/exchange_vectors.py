"""Exchange vectors (pre, tx, post) for every v2 transaction type, valid and against each rule.

Every expected value is worked out by hand in the comments from the fixtures' round numbers
(`exchange_fixtures`), never by calling the state machine: these vectors are what both the Python
state machine and the Vyper verifier are held to.
"""

from __future__ import annotations

from dataclasses import replace

from exchange_fixtures import (
    BTC,
    BTC_PARAMS,
    ETH,
    ETH_PARAMS,
    MARKETS,
    MEMBERS,
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
    deposit_hash,
    encode_committee,
    encode_global,
    encode_markets,
    encode_message,
    encode_order_state,
    encode_tx,
    encode_withdrawal_value,
    encode_word,
    forced_hash,
    message_hash,
)
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import sign_price, sign_transfer, sign_withdraw
from sequencer.stf.keys import (
    account_key,
    global_key,
    insurance_key,
    markets_key,
    oracle_key,
    order_key,
    withdrawal_key,
)
from sequencer.stf.types import (
    Cancel,
    Committee,
    Deleverage,
    Deposit,
    Fill,
    ForcedTx,
    Funding,
    L1Context,
    L1Message,
    Leg,
    Market,
    OracleUpdate,
    OrderState,
    PriceEntry,
    SetCommittee,
    SetMarket,
    Signature,
    SignedOrder,
)

A, B, C, D, E = TRADERS[:5]
BUY, SELL = SIDE_BUY, SIDE_SELL


def filled(n: int, cancelled: bool = False) -> bytes:
    """An Order leaf value."""
    return encode_order_state(OrderState(n, cancelled))


def tamper(signed: SignedOrder, **fields: int) -> SignedOrder:
    """The order changed after signing (its signature no longer matches)."""
    return SignedOrder(replace(signed.order, **fields), signed.sig)


def build_exchange_vectors() -> list[Vector]:
    """All exchange vectors (deterministic)."""
    vectors: list[Vector] = []

    def ok(
        name: str, pre: dict[bytes, bytes], tx: object, writes: dict[bytes, bytes], c: L1Context | None = None
    ) -> None:
        raw = tx if isinstance(tx, bytes) else encode_tx(tx)  # type: ignore[arg-type]
        vectors.append(Vector(name, pre, raw, c or ctx(), None, {**pre, **writes}))

    def bad(name: str, pre: dict[bytes, bytes], tx: object, code: str, c: L1Context | None = None) -> None:
        raw = tx if isinstance(tx, bytes) else encode_tx(tx)  # type: ignore[arg-type]
        vectors.append(Vector(name, pre, raw, c or ctx(), code, dict(pre)))

    base = leaves({A: acct(100_000), B: acct(100_000)}, insurance=1_000)

    # ---- Fill -------------------------------------------------------------------------
    # B sells 200 @ 100 (rests); A buys 100 @ 105; fill 100 at the maker's 100. Notional 10,000:
    # maker fee -10 (rebate 0.1%), taker fee 20 (0.2%), Insurance +10.
    maker = order(1, ETH, SELL, 100, 200)
    taker = order(0, ETH, BUY, 105, 100)
    opened = {
        account_key(A): acct(99_980, 0, (ETH, 100, 10_000)),
        account_key(B): acct(100_010, 0, (ETH, -100, -10_000)),
        order_key(digest(maker)): filled(100),
        order_key(digest(taker)): filled(100),
        insurance_key(): encode_word(1_010),
    }
    ok("fill__opens_both_sides", base, Fill(maker, taker, 100), opened)
    taker2 = order(0, ETH, BUY, 100, 100, salt=1)
    accounts_opened = {k: opened[k] for k in (account_key(A), account_key(B), insurance_key())}
    ok(
        "fill__maker_filled_to_its_size",
        {**base, order_key(digest(maker)): filled(100)},
        Fill(maker, taker2, 100),
        {**accounts_opened, order_key(digest(maker)): filled(200), order_key(digest(taker2)): filled(100)},
    )
    live = order(0, ETH, BUY, 105, 100, expiry=NOW + 1)
    ok(
        "fill__expiry_in_the_future",
        base,
        Fill(maker, live, 100),
        {**accounts_opened, order_key(digest(maker)): filled(100), order_key(digest(live)): filled(100)},
    )
    # A (long 100 @ 10,000) sells 40 to B (short 100 @ -10,000) at B's bid 110.
    # A: removed 4,000, realized 40*110 - 4,000 = 400, taker fee ceil(4,400*0.002) = 9.
    # B: removed -4,000, realized -4,400 + 4,000 = -400, maker fee -(4,400*0.001 floored) = -4.
    held = leaves(
        {A: acct(99_980, 0, (ETH, 100, 10_000)), B: acct(100_010, 0, (ETH, -100, -10_000))}, insurance=1_010
    )
    bid, ask = order(1, ETH, BUY, 110, 40), order(0, ETH, SELL, 108, 40)
    ok(
        "fill__both_reduce_with_realized_pnl",
        held,
        Fill(bid, ask, 40),
        {
            account_key(A): acct(100_371, 0, (ETH, 60, 6_000)),
            account_key(B): acct(99_614, 0, (ETH, -60, -6_000)),
            order_key(digest(bid)): filled(40),
            order_key(digest(ask)): filled(40),
            insurance_key(): encode_word(1_015),
        },
    )
    # A (long 100 @ 10,000) sells 150 at 120 to B: closes 100 (realized 12,000 - 10,000 = 2,000)
    # and opens short 50 @ -6,000; taker fee ceil(18,000*0.002) = 36; B long 150, rebate 18.
    flip_held = leaves({A: acct(99_980, 0, (ETH, 100, 10_000)), B: acct(100_000)}, insurance=1_000)
    bid, ask = order(1, ETH, BUY, 120, 150), order(0, ETH, SELL, 120, 150)
    ok(
        "fill__flips_the_taker",
        flip_held,
        Fill(bid, ask, 150),
        {
            account_key(A): acct(101_944, 0, (ETH, -50, -6_000)),
            account_key(B): acct(100_018, 0, (ETH, 150, 18_000)),
            order_key(digest(bid)): filled(150),
            order_key(digest(ask)): filled(150),
            insurance_key(): encode_word(1_018),
        },
    )
    # Funding index 2: A's long 100 pays 200 before trading; B's new position snapshots 2.
    funded = leaves(
        {A: acct(99_980, 0, (ETH, 100, 10_000, 0)), B: acct(100_000)},
        markets=markets_with(ETH, funding_index=2),
        insurance=1_000,
    )
    ask, bid = order(1, ETH, SELL, 100, 10), order(0, ETH, BUY, 100, 10)
    ok(
        "fill__settles_funding_first",
        funded,
        Fill(ask, bid, 10),
        {
            account_key(A): acct(99_778, 0, (ETH, 110, 11_000, 2)),
            account_key(B): acct(100_001, 0, (ETH, -10, -1_000, 2)),
            order_key(digest(ask)): filled(10),
            order_key(digest(bid)): filled(10),
            insurance_key(): encode_word(1_001),
        },
    )
    # A long 100 @ 10,000 with 450 collateral is under maintenance (equity 450 < 500); selling
    # 50 at 100 realizes 0, fee 10: equity 440 < initial 500, but equity - maintenance goes from
    # -50 to 440 - 250 = 190, so the risk-reducing trade is allowed.
    weak = leaves({A: acct(450, 0, (ETH, 100, 10_000)), B: acct(100_000)}, insurance=1_000)
    bid, ask = order(1, ETH, BUY, 100, 50), order(0, ETH, SELL, 100, 50)
    ok(
        "fill__reduces_below_initial_margin__allowed",
        weak,
        Fill(bid, ask, 50),
        {
            account_key(A): acct(440, 0, (ETH, 50, 5_000)),
            account_key(B): acct(100_005, 0, (ETH, 50, 5_000)),
            order_key(digest(bid)): filled(50),
            order_key(digest(ask)): filled(50),
            insurance_key(): encode_word(1_005),
        },
    )
    # The same account selling 50 at 95 instead: realized -250, fee ceil(4,750 * 0.002) = 10,
    # equity 190 >= 0 but equity - maintenance -60 < -50 before: it loses more than it frees.
    bad(
        "fill__reducing_at_a_bad_price",
        weak,
        Fill(order(1, ETH, BUY, 95, 50), order(0, ETH, SELL, 95, 50), 50),
        "insufficient_margin",
    )
    halted_held = leaves(
        {A: acct(99_980, 0, (ETH, 100, 10_000)), B: acct(100_010, 0, (ETH, -100, -10_000))},
        markets=markets_with(ETH, halted_until=NOW + 1),
        insurance=1_010,
    )
    bid, ask = order(1, ETH, BUY, 110, 40), order(0, ETH, SELL, 108, 40)
    ok(
        "fill__halted_market_reducing_both__allowed",
        halted_held,
        Fill(bid, ask, 40),
        {
            account_key(A): acct(100_371, 0, (ETH, 60, 6_000)),
            account_key(B): acct(99_614, 0, (ETH, -60, -6_000)),
            order_key(digest(bid)): filled(40),
            order_key(digest(ask)): filled(40),
            insurance_key(): encode_word(1_015),
        },
    )
    zero_fee = leaves(
        {A: acct(100_000), B: acct(100_000)},
        markets=markets_with(BTC, params=replace(BTC_PARAMS, taker_fee_bps=0)),
    )
    ask, bid = order(1, BTC, SELL, 5_000, 1), order(0, BTC, BUY, 5_000, 1)
    ok(
        "fill__no_fee_leaves_insurance_unwritten",
        zero_fee,
        Fill(ask, bid, 1),
        {
            account_key(A): acct(100_000, 0, (BTC, 1, 5_000)),
            account_key(B): acct(100_000, 0, (BTC, -1, -5_000)),
            order_key(digest(ask)): filled(1),
            order_key(digest(bid)): filled(1),
        },
    )

    bad("fill__self_trade", base, Fill(maker, order(1, ETH, BUY, 105, 100), 100), "self_trade")
    bad("fill__maker_signature", base, Fill(tamper(maker, price=99), taker, 100), "bad_signature")
    bad("fill__taker_signature", base, Fill(maker, tamper(taker, size=1_000), 100), "bad_signature")
    bad(
        "fill__taker_garbage_signature",
        base,
        Fill(maker, replace(taker, sig=Signature(1, 1, 27)), 100),
        "bad_signature",
    )
    bad(
        "fill__unknown_market",
        base,
        Fill(order(1, 7, SELL, 100, 200), order(0, 7, BUY, 105, 100), 100),
        "unknown_market",
    )
    bad("fill__markets_differ", base, Fill(maker, order(0, BTC, BUY, 5_000, 100), 100), "invalid_order")
    bad("fill__same_side", base, Fill(maker, order(0, ETH, SELL, 100, 100), 100), "invalid_order")
    bad("fill__side_out_of_range", base, Fill(maker, order(0, ETH, 2, 105, 100), 100), "invalid_order")
    bad("fill__maker_ioc", base, Fill(order(1, ETH, SELL, 100, 200, flags=4), taker, 100), "invalid_order")
    bad(
        "fill__taker_post_only",
        base,
        Fill(maker, order(0, ETH, BUY, 105, 100, flags=1), 100),
        "invalid_order",
    )
    bad("fill__unknown_flag", base, Fill(maker, order(0, ETH, BUY, 105, 100, flags=8), 100), "invalid_order")
    bad(
        "fill__post_only_and_ioc",
        base,
        Fill(order(1, ETH, SELL, 100, 200, flags=5), taker, 100),
        "invalid_order",
    )
    bad(
        "fill__price_off_tick",
        base,
        Fill(order(1, BTC, SELL, 5_002, 2), order(0, BTC, BUY, 5_010, 2), 2),
        "price_off_tick",
    )
    bad("fill__order_size_off_lot", base, Fill(order(1, ETH, SELL, 100, 205), taker, 100), "size_off_lot")
    bad("fill__fill_size_off_lot", base, Fill(maker, taker, 15), "size_off_lot")
    bad("fill__zero_size", base, Fill(maker, taker, 0), "size_off_lot")
    bad(
        "fill__taker_expired",
        base,
        Fill(maker, order(0, ETH, BUY, 105, 100, expiry=NOW), 100),
        "order_expired",
    )
    bad(
        "fill__maker_cancelled",
        {**base, order_key(digest(maker)): filled(0, True)},
        Fill(maker, taker, 100),
        "order_cancelled",
    )
    bad(
        "fill__maker_overfilled",
        {**base, order_key(digest(maker)): filled(150)},
        Fill(maker, taker, 100),
        "overfill",
    )
    bad("fill__taker_overfilled", base, Fill(maker, taker, 110), "overfill")
    bad("fill__prices_do_not_cross", base, Fill(maker, order(0, ETH, BUY, 99, 100), 100), "invalid_order")
    bad(
        "fill__reduce_only_would_open",
        base,
        Fill(maker, order(0, ETH, BUY, 105, 100, flags=2), 100),
        "reduce_only",
    )
    bad(
        "fill__reduce_only_would_flip",
        flip_held,
        Fill(order(1, ETH, BUY, 120, 150), order(0, ETH, SELL, 120, 150, flags=2), 150),
        "reduce_only",
    )
    bad(
        "fill__above_max_position",
        base,
        Fill(order(1, BTC, SELL, 5_000, 1_001), order(0, BTC, BUY, 5_000, 1_001), 1_001),
        "position_limit",
    )
    nine = [market(ETH_PARAMS, 100) for _ in range(9)]
    eight = tuple((m, 10, 1_000) for m in range(8))
    bad(
        "fill__ninth_position",
        leaves({A: acct(100_000, 0, *eight), B: acct(100_000)}, markets=nine),
        Fill(order(1, 8, SELL, 100, 10), order(0, 8, BUY, 100, 10), 10),
        "position_limit",
    )
    bad(
        "fill__halted_market_opening",
        leaves({A: acct(100_000), B: acct(100_000)}, markets=markets_with(ETH, halted_until=NOW + 1)),
        Fill(maker, taker, 100),
        "market_halted",
    )
    bad(
        "fill__stale_price_opening",
        leaves({A: acct(100_000), B: acct(100_000)}, markets=markets_with(ETH, oracle_time=NOW - 61)),
        Fill(maker, taker, 100),
        "stale_oracle",
    )
    bad(
        "fill__no_price_yet",
        leaves({A: acct(100_000), B: acct(100_000)}, markets=markets_with(ETH, oracle_time=0, mark_price=0)),
        Fill(maker, taker, 100),
        "stale_oracle",
    )
    # C with 100 buys 100 @ 100: equity 100 - 20 = 80 below initial margin 1,000.
    bad(
        "fill__insufficient_margin",
        leaves({C: acct(100), B: acct(100_000)}),
        Fill(maker, order(2, ETH, BUY, 100, 100), 100),
        "insufficient_margin",
    )
    # A long 100 @ 10,000 with 800 sells everything at 50: realized -5,000, debt: refused.
    bad(
        "fill__reducing_into_debt",
        leaves({A: acct(800, 0, (ETH, 100, 10_000)), B: acct(100_000)}),
        Fill(order(1, ETH, BUY, 50, 100), order(0, ETH, SELL, 50, 100), 100),
        "insufficient_margin",
    )

    # ---- Cancel -----------------------------------------------------------------------
    mine = order(0, ETH, BUY, 105, 100)
    ok("cancel__unseen_order", base, cancel(0, mine), {order_key(digest(mine)): filled(0, True)})
    ok(
        "cancel__keeps_filled",
        {**base, order_key(digest(mine)): filled(40)},
        cancel(0, mine),
        {order_key(digest(mine)): filled(40, True)},
    )
    bad(
        "cancel__twice",
        {**base, order_key(digest(mine)): filled(0, True)},
        cancel(0, mine),
        "order_cancelled",
    )
    bad("cancel__by_another_trader", base, Cancel(mine.order, cancel(1, mine).sig), "bad_signature")

    # ---- OracleUpdate -----------------------------------------------------------------
    # Marks 104, 101, 103 -> lower median 103; indexes 103, 100, 102 -> 102; times -> NOW-1.
    # ETH's breaker opens its window at NOW-1 on the old mark 100; a 3% move does not halt.
    three = OracleUpdate(
        ETH,
        (
            price(0, ETH, 104, 103, NOW - 2),
            price(1, ETH, 101, 100, NOW - 1),
            price(2, ETH, 103, 102, NOW),
        ),
    )
    plain = leaves({})
    ok(
        "oracle__lower_medians",
        plain,
        three,
        {
            markets_key(): encode_markets(
                markets_with(
                    ETH,
                    mark_price=103,
                    index_price=102,
                    oracle_time=NOW - 1,
                    breaker_ref_price=100,
                    breaker_ref_time=NOW - 1,
                )
            )
        },
    )
    four = OracleUpdate(BTC, tuple(price(i, BTC, 5_000 + 5 * i, 5_000, NOW) for i in (3, 0, 2, 1)))
    ok(
        "oracle__even_count_takes_lower_median",
        plain,
        four,
        {
            markets_key(): encode_markets(
                markets_with(BTC, mark_price=5_005, index_price=5_000, oracle_time=NOW)
            )
        },
    )
    # 100 -> 120 is 20% > 15%: halted for the window (60 s) from the update's time.
    jump = OracleUpdate(ETH, tuple(price(i, ETH, 120, 119, NOW) for i in range(3)))
    ok(
        "oracle__breaker_halts",
        plain,
        jump,
        {
            markets_key(): encode_markets(
                markets_with(
                    ETH,
                    mark_price=120,
                    index_price=119,
                    oracle_time=NOW,
                    breaker_ref_price=100,
                    breaker_ref_time=NOW,
                    halted_until=NOW + 60,
                )
            )
        },
    )
    unpriced = markets_with(ETH, mark_price=0, index_price=0, oracle_time=0, last_funding_time=0)
    ok(
        "oracle__first_price_starts_funding",
        leaves({}, markets=unpriced),
        three,
        {
            markets_key(): encode_markets(
                [
                    replace(
                        unpriced[ETH],
                        mark_price=103,
                        index_price=102,
                        oracle_time=NOW - 1,
                        last_funding_time=NOW - 1,
                        breaker_ref_price=103,
                        breaker_ref_time=NOW - 1,
                    ),
                    unpriced[BTC],
                ]
            )
        },
    )
    bad("oracle__below_threshold", plain, OracleUpdate(ETH, three.prices[:2]), "invalid_oracle_update")
    stranger = PriceEntry(103, 102, NOW, sign_price(b"\x42" * 32, ETH, 103, 102, NOW, CONFIG))
    bad(
        "oracle__non_member", plain, OracleUpdate(ETH, (*three.prices[:2], stranger)), "invalid_oracle_update"
    )
    bad(
        "oracle__member_twice",
        plain,
        OracleUpdate(ETH, (three.prices[0], three.prices[1], price(0, ETH, 102, 101, NOW))),
        "invalid_oracle_update",
    )
    bad(
        "oracle__price_from_the_future",
        plain,
        OracleUpdate(ETH, (*three.prices[:2], price(2, ETH, 103, 102, NOW + 1))),
        "invalid_oracle_update",
    )
    stale_update = OracleUpdate(ETH, tuple(price(i, ETH, 101, 100, NOW - 10) for i in range(3)))
    bad("oracle__not_newer", plain, stale_update, "invalid_oracle_update")
    bad(
        "oracle__zero_mark",
        plain,
        OracleUpdate(ETH, tuple(price(i, ETH, 0, 100, NOW) for i in range(3))),
        "invalid_oracle_update",
    )
    bad("oracle__no_committee", leaves({}, committee=None), three, "invalid_oracle_update")
    bad(
        "oracle__unknown_market",
        plain,
        OracleUpdate(5, tuple(price(i, 5, 1, 1, NOW) for i in range(3))),
        "unknown_market",
    )
    forged = PriceEntry(110, 102, NOW, three.prices[2].sig)
    bad(
        "oracle__tampered_price",
        plain,
        OracleUpdate(ETH, (*three.prices[:2], forged)),
        "invalid_oracle_update",
    )

    # ---- Funding ----------------------------------------------------------------------
    # A step names the period it settles from (`since`, the market's `last_funding_time`).
    # BTC mark 5,030 over index 5,000: premium 30 within the cap 5,000 * 1% = 50.
    due = markets_with(BTC, mark_price=5_030, last_funding_time=NOW - 60)
    stepped = markets_with(BTC, mark_price=5_030, funding_index=30, last_funding_time=NOW)
    ok(
        "funding__one_period",
        leaves({}, markets=due),
        Funding(BTC, NOW - 60),
        {markets_key(): encode_markets(stepped)},
    )
    late = markets_with(BTC, mark_price=5_200, last_funding_time=NOW - 200)
    ok(
        "funding__clamped_over_three_periods",
        leaves({}, markets=late),
        Funding(BTC, NOW - 200),
        {
            markets_key(): encode_markets(
                markets_with(BTC, mark_price=5_200, funding_index=150, last_funding_time=NOW - 20)
            )
        },
    )
    under = markets_with(BTC, mark_price=4_980, funding_index=7, last_funding_time=NOW - 60)
    ok(
        "funding__negative_premium",
        leaves({}, markets=under),
        Funding(BTC, NOW - 60),
        {
            markets_key(): encode_markets(
                markets_with(BTC, mark_price=4_980, funding_index=-13, last_funding_time=NOW)
            )
        },
    )
    # An interval later (priced again at NOW + 30), the next period's step from where the first
    # one left off; the first step again is a replay of a settled period: a no-op.
    repriced = markets_with(
        BTC, mark_price=5_030, funding_index=30, last_funding_time=NOW, oracle_time=NOW + 30
    )
    ok(
        "funding__next_period",
        leaves({}, markets=repriced),
        Funding(BTC, NOW),
        {
            markets_key(): encode_markets(
                markets_with(
                    BTC, mark_price=5_030, funding_index=60, last_funding_time=NOW + 60, oracle_time=NOW + 30
                )
            )
        },
        ctx(NOW + 60),
    )
    bad(
        "funding__replayed_period",
        leaves({}, markets=repriced),
        Funding(BTC, NOW - 60),
        "funding_not_due",
        ctx(NOW + 60),
    )
    bad("funding__future_period", leaves({}, markets=due), Funding(BTC, NOW), "funding_not_due")
    bad(
        "funding__period_one_second_off",
        leaves({}, markets=due),
        Funding(BTC, NOW - 59),
        "funding_not_due",
    )
    bad(
        "funding__not_due",
        leaves({}, markets=markets_with(BTC, last_funding_time=NOW - 59)),
        Funding(BTC, NOW - 59),
        "funding_not_due",
    )
    bad(
        "funding__not_started",
        leaves({}, markets=markets_with(BTC, last_funding_time=0)),
        Funding(BTC, 0),
        "funding_not_due",
    )
    bad(
        "funding__stale_price",
        leaves({}, markets=markets_with(BTC, oracle_time=NOW - 61, last_funding_time=NOW - 120)),
        Funding(BTC, NOW - 120),
        "stale_oracle",
    )
    bad("funding__unknown_market", plain, Funding(2, NOW - 10), "unknown_market")

    # ---- Transfers, withdrawals and deposits with positions ---------------------------
    # A: 2,000 collateral, long 1 BTC @ 5,000 at mark 5,000: equity 2,000, initial margin 1,000.
    margined = leaves({A: acct(2_000, 0, (BTC, 1, 5_000)), B: acct(0)})
    a_key = trader_key(0)
    ok(
        "transfer__keeps_initial_margin",
        margined,
        sign_transfer(a_key, B, 1_000, 0, CONFIG),
        {account_key(A): acct(1_000, 1, (BTC, 1, 5_000)), account_key(B): acct(1_000)},
    )
    bad(
        "transfer__below_initial_margin",
        margined,
        sign_transfer(a_key, B, 1_001, 0, CONFIG),
        "insufficient_margin",
    )
    bad(
        "transfer__stale_price_with_positions",
        leaves({A: acct(2_000, 0, (BTC, 1, 5_000))}, markets=markets_with(BTC, oracle_time=NOW - 61)),
        sign_transfer(a_key, B, 1, 0, CONFIG),
        "stale_oracle",
    )
    bad(
        "withdraw__below_initial_margin",
        margined,
        sign_withdraw(a_key, A, 1_001, 0, CONFIG),
        "insufficient_margin",
    )
    # funding index 30 at BTC: A's long 1 pays 30 on settling, B's short 2 receives 60.
    settling = leaves(
        {A: acct(2_000, 0, (BTC, 1, 5_000)), B: acct(100, 0, (BTC, -2, -10_000))},
        markets=markets_with(BTC, funding_index=30),
    )
    ok(
        "transfer__settles_both_accounts",
        settling,
        sign_transfer(a_key, B, 500, 0, CONFIG),
        {
            account_key(A): acct(1_470, 1, (BTC, 1, 5_000, 30)),
            account_key(B): acct(660, 0, (BTC, -2, -10_000, 30)),
        },
    )
    queued = L1Context(4, {3: deposit_hash(3, B, 40)}, NOW)
    ok(
        "deposit__settles_funding",
        {**settling, global_key(): encode_global(3)},
        Deposit(3, B, 40),
        {global_key(): encode_global(4), account_key(B): acct(200, 0, (BTC, -2, -10_000, 30))},
        queued,
    )

    # ---- Forced transfers and withdrawals with positions: the same margin rules ----------
    def forced(index: int, inner: object) -> tuple[ForcedTx, L1Context]:
        raw = encode_tx(inner)  # type: ignore[arg-type]
        return ForcedTx(index, raw), L1Context(index + 1, {index: forced_hash(index, raw)}, NOW)

    tx, c = forced(3, sign_withdraw(a_key, A, 1_000, 0, CONFIG))
    ok(
        "forced__withdraw_keeps_initial_margin",
        {**margined, global_key(): encode_global(3)},
        tx,
        {
            global_key(): encode_global(4),
            account_key(A): acct(1_000, 1, (BTC, 1, 5_000)),
            withdrawal_key(A, 0): encode_withdrawal_value(A, 1_000),
        },
        c,
    )
    tx, c = forced(3, sign_withdraw(a_key, A, 1_001, 0, CONFIG))
    ok(
        "forced__withdraw_below_initial_margin__only_consumed",
        {**margined, global_key(): encode_global(3)},
        tx,
        {global_key(): encode_global(4)},
        c,
    )
    tx, c = forced(3, sign_transfer(a_key, B, 1, 0, CONFIG))
    ok(
        "forced__transfer_stale_price__only_consumed",
        {
            **leaves({A: acct(2_000, 0, (BTC, 1, 5_000))}, markets=markets_with(BTC, oracle_time=NOW - 61)),
            global_key(): encode_global(3),
        },
        tx,
        {global_key(): encode_global(4)},
        c,
    )
    tx, c = forced(3, sign_transfer(a_key, B, 500, 0, CONFIG))
    ok(
        "forced__transfer_settles_both_accounts",
        {**settling, global_key(): encode_global(3)},
        tx,
        {
            global_key(): encode_global(4),
            account_key(A): acct(1_470, 1, (BTC, 1, 5_000, 30)),
            account_key(B): acct(660, 0, (BTC, -2, -10_000, 30)),
        },
        c,
    )

    # ---- Liquidate --------------------------------------------------------------------
    # C long 100 ETH @ 10,000 with 400: equity 400 < maintenance 500. D (50,000) takes 50 at
    # the mark 100: C realizes 0 and pays penalty ceil(5,000 * 1%) = 50 into Insurance.
    weak_c = leaves({C: acct(400, 0, (ETH, 100, 10_000)), D: acct(50_000)}, insurance=1_000)
    ok(
        "liquidate__partial",
        weak_c,
        liquidate(3, C, ETH, 50),
        {
            account_key(C): acct(350, 0, (ETH, 50, 5_000)),
            account_key(D): acct(50_000, 1, (ETH, 50, 5_000)),
            insurance_key(): encode_word(1_050),
        },
    )
    ok(
        "liquidate__during_a_halt",
        {**weak_c, markets_key(): encode_markets(markets_with(ETH, halted_until=NOW + 30))},
        liquidate(3, C, ETH, 50),
        {
            account_key(C): acct(350, 0, (ETH, 50, 5_000)),
            account_key(D): acct(50_000, 1, (ETH, 50, 5_000)),
            insurance_key(): encode_word(1_050),
        },
    )
    # Mark 90: C's equity 400 + 9,000 - 10,000 = -600. Closing all 100 realizes -1,000
    # (collateral -600), penalty ceil(9,000 * 1%) = 90 (-690); Insurance 1,090 pays the 690.
    sunk = markets_with(ETH, mark_price=90, index_price=90)
    ok(
        "liquidate__last_position_debt_paid_by_insurance",
        leaves({C: acct(400, 0, (ETH, 100, 10_000)), D: acct(50_000)}, markets=sunk, insurance=1_000),
        liquidate(3, C, ETH, 100),
        {
            account_key(C): acct(0),
            account_key(D): acct(50_000, 1, (ETH, 100, 9_000)),
            insurance_key(): encode_word(400),
        },
    )
    bad(
        "liquidate__insurance_too_small",
        leaves({C: acct(400, 0, (ETH, 100, 10_000)), D: acct(50_000)}, markets=sunk, insurance=100),
        liquidate(3, C, ETH, 100),
        "not_liquidatable",
    )
    bad(
        "liquidate__healthy_account",
        leaves({C: acct(10_000, 0, (ETH, 100, 10_000)), D: acct(50_000)}),
        liquidate(3, C, ETH, 50),
        "not_liquidatable",
    )
    bad("liquidate__more_than_held", weak_c, liquidate(3, C, ETH, 110), "not_liquidatable")
    bad("liquidate__size_off_lot", weak_c, liquidate(3, C, ETH, 55), "size_off_lot")
    bad("liquidate__wrong_nonce", weak_c, liquidate(3, C, ETH, 50, nonce=1), "bad_nonce")
    bad("liquidate__self", weak_c, liquidate(2, C, ETH, 50), "self_trade")
    bad(
        "liquidate__stale_price",
        {**weak_c, markets_key(): encode_markets(markets_with(ETH, oracle_time=NOW - 61))},
        liquidate(3, C, ETH, 50),
        "stale_oracle",
    )
    bad(
        "liquidate__liquidator_short_of_margin",
        leaves({C: acct(400, 0, (ETH, 100, 10_000)), D: acct(100)}, insurance=1_000),
        liquidate(3, C, ETH, 50),
        "insufficient_margin",
    )
    bad("liquidate__unknown_market", weak_c, liquidate(3, C, 9, 50), "unknown_market")
    signed = liquidate(3, C, ETH, 50)
    bad("liquidate__tampered", weak_c, replace(signed, size=60), "bad_signature")

    # ---- Deleverage -------------------------------------------------------------------
    # A deleverage names the bankrupt account's nonce and consumes it (C: 0 -> 1).
    # C long 100 @ 10,000, 400, mark 90: equity -600 > Insurance 100. E short 200 @ -24,000.
    # C gets the 100 (500); bankruptcy price ceil((10,000 - 500) / 100) = 95: C ends at 0.
    # E buys 100 at 95: removed -12,000, realized -9,500 + 12,000 = 2,500 -> 7,500.
    bankrupt = {C: acct(400, 0, (ETH, 100, 10_000)), E: acct(5_000, 0, (ETH, -200, -24_000))}
    ok(
        "deleverage__long",
        leaves(bankrupt, markets=sunk, insurance=100),
        Deleverage(C, E, ETH, 0),
        {
            account_key(C): acct(0, 1),
            account_key(E): acct(7_500, 0, (ETH, -100, -12_000)),
            insurance_key(): encode_word(0),
        },
    )
    # C short 100 @ -10,000, 400, mark 110: equity -600. E long 200 @ 16,000. C gets 100 (500);
    # price (500 + 10,000) // 100 = 105. E sells 100 at 105: removed 8,000, realized 2,500.
    squeezed = markets_with(ETH, mark_price=110, index_price=110)
    ok(
        "deleverage__short",
        leaves(
            {C: acct(400, 0, (ETH, -100, -10_000)), E: acct(5_000, 0, (ETH, 200, 16_000))},
            markets=squeezed,
            insurance=100,
        ),
        Deleverage(C, E, ETH, 0),
        {
            account_key(C): acct(0, 1),
            account_key(E): acct(7_500, 0, (ETH, 100, 8_000)),
            insurance_key(): encode_word(0),
        },
    )
    ok(
        "deleverage__no_insurance_leaf",
        leaves(bankrupt, markets=sunk),
        Deleverage(C, E, ETH, 0),
        {account_key(C): acct(0, 1), account_key(E): acct(7_400, 0, (ETH, -100, -12_000))},
    )
    bad(
        "deleverage__equity_not_negative",
        leaves(bankrupt, insurance=100),
        Deleverage(C, E, ETH, 0),
        "not_liquidatable",
    )
    bad(
        "deleverage__insurance_covers",
        leaves(bankrupt, markets=sunk, insurance=600),
        Deleverage(C, E, ETH, 0),
        "not_liquidatable",
    )
    bad(
        "deleverage__counterparty_same_side",
        leaves({**bankrupt, E: acct(5_000, 0, (ETH, 200, 20_000))}, markets=sunk, insurance=100),
        Deleverage(C, E, ETH, 0),
        "not_liquidatable",
    )
    bad(
        "deleverage__counterparty_too_small",
        leaves({**bankrupt, E: acct(5_000, 0, (ETH, -50, -6_000))}, markets=sunk, insurance=100),
        Deleverage(C, E, ETH, 0),
        "not_liquidatable",
    )
    bad(
        "deleverage__two_positions",
        leaves(
            {**bankrupt, C: acct(400, 0, (ETH, 100, 10_000), (BTC, 1, 5_000))}, markets=sunk, insurance=100
        ),
        Deleverage(C, E, ETH, 0),
        "not_liquidatable",
    )
    bad(
        "deleverage__counterparty_cannot_absorb",
        leaves({**bankrupt, E: acct(0, 0, (ETH, -100, -9_000))}, markets=sunk, insurance=100),
        Deleverage(C, E, ETH, 0),
        "not_liquidatable",
    )
    bad(
        "deleverage__self",
        leaves(bankrupt, markets=sunk, insurance=100),
        Deleverage(C, C, ETH, 0),
        "self_trade",
    )
    bad(
        "deleverage__stale_price",
        leaves(bankrupt, markets=[replace(sunk[ETH], oracle_time=NOW - 61), sunk[BTC]], insurance=100),
        Deleverage(C, E, ETH, 0),
        "stale_oracle",
    )
    # Short whose collateral plus entry is negative: no bankruptcy price at or above zero.
    bad(
        "deleverage__no_non_negative_price",
        leaves(
            {C: acct(-20_000, 0, (ETH, -100, -10_000)), E: acct(5_000, 0, (ETH, 200, 16_000))},
            markets=squeezed,
            insurance=100,
        ),
        Deleverage(C, E, ETH, 0),
        "not_liquidatable",
    )
    # C deleveraged before (nonce 3): a deleverage naming its nonce applies and makes it 4; one
    # naming an earlier nonce (the replay of the last one) or a later one is a no-op.
    again = {**bankrupt, C: acct(400, 3, (ETH, 100, 10_000))}
    ok(
        "deleverage__again_later",
        leaves(again, markets=sunk, insurance=100),
        Deleverage(C, E, ETH, 3),
        {
            account_key(C): acct(0, 4),
            account_key(E): acct(7_500, 0, (ETH, -100, -12_000)),
            insurance_key(): encode_word(0),
        },
    )
    bad(
        "deleverage__replayed_nonce",
        leaves(again, markets=sunk, insurance=100),
        Deleverage(C, E, ETH, 2),
        "bad_nonce",
    )
    bad(
        "deleverage__future_nonce",
        leaves(again, markets=sunk, insurance=100),
        Deleverage(C, E, ETH, 4),
        "bad_nonce",
    )
    # The counterparty's nonce is not the one named.
    bad(
        "deleverage__counterparty_nonce",
        leaves({**bankrupt, E: acct(5_000, 3, (ETH, -200, -24_000))}, markets=sunk, insurance=100),
        Deleverage(C, E, ETH, 3),
        "bad_nonce",
    )

    # ---- BundleFill -------------------------------------------------------------------
    # A buys 100 ETH (limit 101) from B's ask at 100 and sells 2 BTC (limit 4,990) to D's bid at
    # 5,000. ETH: taker fee 20, B rebate 10. BTC: notional 10,000, taker fee 10, maker fee 0.
    bundle_base = leaves({A: acct(100_000), B: acct(100_000), D: acct(50_000)}, insurance=1_000)
    eth_ask, btc_bid = order(1, ETH, SELL, 100, 100), order(3, BTC, BUY, 5_000, 2)
    legs = [Leg(ETH, BUY, 101, 100), Leg(BTC, SELL, 4_990, 2)]
    spread = bundle_fill(0, legs, [eth_ask, btc_bid])
    ok(
        "bundle__two_legs",
        bundle_base,
        spread,
        {
            account_key(A): acct(99_970, 0, (ETH, 100, 10_000), (BTC, -2, -10_000)),
            account_key(B): acct(100_010, 0, (ETH, -100, -10_000)),
            account_key(D): acct(50_000, 0, (BTC, 2, 10_000)),
            order_key(digest(eth_ask)): filled(100),
            order_key(digest(btc_bid)): filled(2),
            bundle_key(spread): filled(1),
            insurance_key(): encode_word(1_020),
        },
    )
    b_btc_bid = order(1, BTC, BUY, 5_000, 2)
    same_maker = bundle_fill(0, legs, [eth_ask, b_btc_bid], salt=1)
    ok(
        "bundle__one_maker_for_both_legs",
        bundle_base,
        same_maker,
        {
            account_key(A): acct(99_970, 0, (ETH, 100, 10_000), (BTC, -2, -10_000)),
            account_key(B): acct(100_010, 0, (ETH, -100, -10_000), (BTC, 2, 10_000)),
            order_key(digest(eth_ask)): filled(100),
            order_key(digest(b_btc_bid)): filled(2),
            bundle_key(same_maker): filled(1),
            insurance_key(): encode_word(1_020),
        },
    )
    bad(
        "bundle__one_leg_overfilled",
        {**bundle_base, order_key(digest(btc_bid)): filled(1)},
        spread,
        "overfill",
    )
    bad("bundle__replayed", {**bundle_base, bundle_key(spread): filled(1)}, spread, "overfill")
    bad(
        "bundle__same_market_twice",
        bundle_base,
        bundle_fill(0, [Leg(ETH, BUY, 101, 50), Leg(ETH, BUY, 101, 50)], [eth_ask, eth_ask]),
        "invalid_order",
    )
    bad("bundle__expired", bundle_base, bundle_fill(0, legs, [eth_ask, btc_bid], expiry=NOW), "order_expired")
    bad(
        "bundle__leg_does_not_cross",
        bundle_base,
        bundle_fill(0, [Leg(ETH, BUY, 99, 100), legs[1]], [eth_ask, btc_bid]),
        "invalid_order",
    )
    bad(
        "bundle__maker_is_the_trader",
        bundle_base,
        bundle_fill(0, legs, [eth_ask, order(0, BTC, BUY, 5_000, 2)]),
        "self_trade",
    )
    tampered = replace(spread, bundle=replace(spread.bundle, legs=(Leg(ETH, BUY, 101, 90), legs[1])))
    bad("bundle__tampered_leg", bundle_base, tampered, "bad_signature")
    bad(
        "bundle__insufficient_margin",
        {**bundle_base, account_key(A): acct(100)},
        spread,
        "insufficient_margin",
    )
    bad(
        "bundle__leg_off_lot",
        bundle_base,
        bundle_fill(0, [Leg(ETH, BUY, 101, 105), legs[1]], [order(1, ETH, SELL, 100, 105), btc_bid]),
        "size_off_lot",
    )

    # ---- L1Message (governance) --------------------------------------------------------
    def message(index: int, payload: bytes) -> tuple[L1Message, L1Context]:
        return L1Message(index, payload), L1Context(index + 1, {index: message_hash(index, payload)}, NOW)

    listing = encode_message(SetMarket(0, ETH_PARAMS))
    tx, c = message(5, listing)
    ok(
        "message__lists_the_first_market",
        {global_key(): encode_global(5)},
        tx,
        {global_key(): encode_global(6), markets_key(): encode_markets([Market(ETH_PARAMS)])},
        c,
    )
    tighter = replace(ETH_PARAMS, imr_bps=1500, mmr_bps=800)
    tx, c = message(5, encode_message(SetMarket(ETH, tighter)))
    ok(
        "message__changes_params_keeps_prices",
        {**plain, global_key(): encode_global(5)},
        tx,
        {global_key(): encode_global(6), markets_key(): encode_markets(markets_with(ETH, params=tighter))},
        c,
    )
    tx, c = message(5, encode_message(SetMarket(2, BTC_PARAMS)))
    ok(
        "message__lists_the_next_market",
        {**plain, global_key(): encode_global(5)},
        tx,
        {global_key(): encode_global(6), markets_key(): encode_markets([*MARKETS, Market(BTC_PARAMS)])},
        c,
    )
    for name, payload in [
        ("market_id_gap", encode_message(SetMarket(3, BTC_PARAMS))),
        ("mmr_above_imr", encode_message(SetMarket(ETH, replace(ETH_PARAMS, mmr_bps=1_100)))),
        ("zero_lot", encode_message(SetMarket(ETH, replace(ETH_PARAMS, lot_size=0)))),
        ("rebate_above_taker_fee", encode_message(SetMarket(ETH, replace(ETH_PARAMS, maker_fee_bps=-21)))),
        ("garbage", b"\x01\x02\x03"),
        ("unknown_kind", b"\x09" + bytes(52)),
        ("committee_member_twice", encode_message(SetCommittee(Committee(2, (MEMBERS[0], MEMBERS[0]))))),
        ("committee_threshold_zero", encode_message(SetCommittee(Committee(0, tuple(MEMBERS))))),
    ]:
        tx, c = message(5, payload)
        ok(
            f"message__invalid_{name}__only_consumed",
            {**plain, global_key(): encode_global(5)},
            tx,
            {global_key(): encode_global(6)},
            c,
        )
    new_committee = Committee(2, tuple(MEMBERS[:3]))
    tx, c = message(5, encode_message(SetCommittee(new_committee)))
    ok(
        "message__sets_committee",
        {**plain, global_key(): encode_global(5)},
        tx,
        {global_key(): encode_global(6), oracle_key(): encode_committee(new_committee)},
        c,
    )
    tx, c = message(5, listing)
    bad(
        "message__hash_mismatch",
        {global_key(): encode_global(5)},
        tx,
        "bad_deposit",
        L1Context(6, {5: message_hash(5, b"\x02")}, NOW),
    )
    bad("message__out_of_order", {global_key(): encode_global(4)}, tx, "bad_deposit", c)
    bad(
        "message__beyond_queue_end",
        {global_key(): encode_global(5)},
        tx,
        "bad_deposit",
        L1Context(5, c.queue_hashes, NOW),
    )
    return vectors


EXCHANGE_VECTORS = build_exchange_vectors()
"""All exchange vectors, built once."""
