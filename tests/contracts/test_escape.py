"""The escape hatch (docs/protocol.md section 12): freezing the Rollup, refunding the deposits no
batch consumed, and each account's exit from the frozen state, paid pro rata of what the Bridge
holds for the exits.

The scene is a small exchange built by real batches (one market, three traders with open
positions, a pending withdrawal, a price fall that leaves one trader below zero), then an
unconsumed deposit. Expected values come from the state machine (`sequencer.stf.escape`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from contracts_harness import FORCE_INCLUSION_SECONDS, Harness, user_address, user_key

from contracts.bindings import Sender, TransactionReverted
from devnet.deploy import DeployParams
from devnet.l1_harness import CHALLENGE_WINDOW_SECONDS, MIN_BOND_WEI
from prover.withdrawals import WithdrawalClaim
from sequencer.stf.codec import encode_message, encode_tx
from sequencer.stf.eip712 import address_of, sign_order, sign_price
from sequencer.stf.escape import exit_claim, exit_equity, exit_payout, exit_pool, exit_proof
from sequencer.stf.hashing import keccak
from sequencer.stf.keys import markets_key, withdrawal_key
from sequencer.stf.smt import Witness
from sequencer.stf.state import get_insurance
from sequencer.stf.types import (
    Committee,
    Fill,
    L1Message,
    MarketParams,
    OracleUpdate,
    Order,
    PriceEntry,
    SetCommittee,
    SetMarket,
)

ESCAPE_DELAY_SECONDS = 80
EXIT_WINDOW_SECONDS = 30
PARAMS = MarketParams(
    tick_size=1,
    lot_size=10,
    max_position=10**9,
    imr_bps=1_000,
    mmr_bps=500,
    maker_fee_bps=0,
    taker_fee_bps=10,
    liquidation_penalty_bps=100,
    breaker_bps=0,
    max_funding_bps=50,
    funding_interval=60,
    breaker_window=60,
    max_oracle_age=3_600,
)
MEMBER_KEY = keccak(b"escape-test-member")
A, B, C, D = 1, 2, 3, 4
"""Traders (user indexes): A long, B short, C long on little collateral (below zero after the
fall), D never deposited before the freeze (its deposit is refunded)."""
DEPOSITOR, LATE_DEPOSITOR = 5, 6
"""L1 accounts paying the deposits."""
WITHDRAWN = 5_000
"""A's withdrawal, final before the freeze and not claimed yet."""
L1_RECIPIENT = bytes.fromhex("00000000000000000000000000000000000e5c00")


@dataclass
class Scene:
    """The frozen-to-be exchange and where things are."""

    h: Harness
    withdrawal: WithdrawalClaim
    """A's pending withdrawal."""
    late_deposit: tuple[int, bytes, int]
    """`(index, to, amount)` of the deposit no batch consumed."""
    last_append: int
    """L1 time of the last batch."""

    def traders(self) -> list[int]:
        return [A, B, C]


def _prices(h: Harness, price: int, at: int) -> bytes:
    sig = sign_price(MEMBER_KEY, 0, price, price, at, h.config)
    return encode_tx(OracleUpdate(0, (PriceEntry(price, price, at, sig),)))


def _fill(h: Harness, maker: int, taker: int, size: int, salt: int) -> bytes:
    ask = sign_order(user_key(maker), Order(user_address(maker), 0, 1, 100, size, 0, 0, salt), h.config)
    bid = sign_order(user_key(taker), Order(user_address(taker), 0, 0, 100, size, 0, 0, salt), h.config)
    return encode_tx(Fill(ask, bid, size))


def build_scene(loser: bool = True) -> Scene:
    """One market priced at 100; A buys 100 and C (with 2,000) buys 100 from B; A withdraws 5,000;
    the price falls to 70 (C below zero unless `loser` is off); then a deposit for D waits."""
    h = Harness.create(
        DeployParams(
            challenge_window_seconds=CHALLENGE_WINDOW_SECONDS,
            min_bond_wei=MIN_BOND_WEI,
            force_inclusion_seconds=FORCE_INCLUSION_SECONDS,
            escape_delay_seconds=ESCAPE_DELAY_SECONDS,
            exit_window_seconds=EXIT_WINDOW_SECONDS,
        )
    )
    seq = h.account(1)
    h.bond(seq)
    queued = []
    for payload in (
        encode_message(SetMarket(0, PARAMS)),
        encode_message(SetCommittee(Committee(1, (address_of(MEMBER_KEY),)))),
    ):
        index = h.bridge.queue_length()
        h.bridge.send_message(h.deployer, payload)
        queued.append(encode_tx(L1Message(index, payload)))
    deposits = {A: 100_000, B: 100_000, **({C: 2_000} if loser else {})}
    for i, amount in deposits.items():
        index = h.bridge.queue_length()
        h.deposit(user_address(i), amount, depositor=DEPOSITOR)
        queued.append(h.deposit_tx(index, user_address(i), amount))
    h.append(seq, queued, queue_end=h.bridge.queue_length())
    now = h.default_l2_time()
    h.append(seq, [_prices(h, 100, now)], l2_time=now)
    trades = [_fill(h, B, A, 100, 1), *([_fill(h, B, C, 100, 2)] if loser else [])]
    h.append(seq, [*trades, h.withdraw_tx(A, L1_RECIPIENT, WITHDRAWN, 0)])
    h.travel_to(h.default_l2_time() + 1)
    later = h.default_l2_time()
    batch = h.append(seq, [_prices(h, 70, later)], l2_time=later)
    state = h.state
    witness = state.tree.witness(withdrawal_key(user_address(A), 0))
    withdrawal = WithdrawalClaim(batch.header, user_address(A), 0, L1_RECIPIENT, WITHDRAWN, witness)
    index = h.bridge.queue_length()
    h.deposit(user_address(D), 500, depositor=LATE_DEPOSITOR)
    return Scene(h, withdrawal, (index, user_address(D), 500), batch.header.timestamp)


@pytest.fixture(scope="module")
def built() -> Scene:
    return build_scene()


@pytest.fixture
def s(built: Scene) -> Iterator[Scene]:
    """The scene, reverted to its built state after each test."""
    tester = built.h.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    snapshot = tester.take_snapshot()
    try:
        yield built
    finally:
        tester.revert_to_snapshot(snapshot)


def _reason(call: object) -> str | None:
    with pytest.raises(TransactionReverted) as err:
        call()  # type: ignore[operator]
    return err.value.reason


def _frozen(s: Scene) -> int:
    """Freeze the scene's Rollup once allowed; returns the freeze's L1 time."""
    s.h.travel_to(s.last_append + ESCAPE_DELAY_SECONDS)
    result = s.h.rollup.freeze(s.h.account(9))
    (event,) = s.h.rollup.frozen_from_receipt(result.receipt)
    return event.timestamp


def _register(s: Scene, i: int) -> object:
    h = s.h
    _fund(h, i)
    proof = exit_proof(h.state, user_address(i))
    return h.bridge.register_exit(
        Sender.from_key(user_key(i)), user_address(i), proof.account_witness, proof.markets_witness
    )


def _fund(h: Harness, i: int) -> None:
    address = Sender.from_key(user_key(i)).address
    if h.balance(address) < 10**17:
        h.w3.eth.send_transaction({"from": h.deployer.address, "to": address, "value": 10**18})  # type: ignore[typeddict-item]


# ---- freeze ----


def test_freeze__before_the_escape_delay__refused(s: Scene) -> None:
    h = s.h
    h.travel_to(h.bridge.queue_timestamp(s.late_deposit[0]) + FORCE_INCLUSION_SECONDS)  # overdue
    assert h.latest_timestamp() + 1 < s.last_append + ESCAPE_DELAY_SECONDS
    assert _reason(lambda: h.rollup.freeze(h.account(9))) == "rollup: escape delay not passed"
    assert h.rollup.frozen_at() == 0


def test_freeze__no_overdue_queue_entry__refused() -> None:
    h = Harness.create(DeployParams(escape_delay_seconds=ESCAPE_DELAY_SECONDS))
    h.travel_to(h.latest_timestamp() + 10 * ESCAPE_DELAY_SECONDS)
    assert _reason(lambda: h.rollup.freeze(h.account(9))) == "rollup: no overdue queue entry"  # none
    h.deposit(user_address(1), 10)
    assert _reason(lambda: h.rollup.freeze(h.account(9))) == "rollup: no overdue queue entry"  # fresh
    h.travel_to(h.latest_timestamp() + FORCE_INCLUSION_SECONDS)
    h.rollup.freeze(h.account(9))
    assert h.rollup.frozen_at() > 0


def test_freeze__delay_passed_with_an_overdue_entry__frozen_and_nothing_enters(s: Scene) -> None:
    h = s.h
    tip = h.rollup.tip()
    at = _frozen(s)
    (event,) = h.rollup.frozen_events(h.deployment.deploy_block)
    assert (event.batch_count, event.post_root, event.queue_end, event.timestamp) == (
        tip.batch_count,
        tip.post_root,
        tip.queue_end,
        at,
    )
    assert h.rollup.frozen_at() == at and tip.post_root == h.state.tree.root
    seq = h.account(1)
    l2_time = h.default_l2_time()
    with pytest.raises(TransactionReverted) as err:
        h.rollup.append_batch(
            seq,
            [_prices(h, 71, l2_time)],
            [b"\x01" * 32],
            prev_root=tip.post_root,
            queue_start=tip.queue_end,
            queue_end=tip.queue_end,
            l2_time=l2_time,
        )
    assert err.value.reason == "rollup: frozen"
    assert _reason(lambda: h.rollup.freeze(h.account(9))) == "rollup: frozen"
    assert _reason(lambda: h.deposit(user_address(D), 1)) == "bridge: frozen"
    assert _reason(lambda: h.bridge.force_tx(h.account(7), b"\x02")) == "bridge: frozen"
    assert _reason(lambda: h.bridge.send_message(h.deployer, b"\x01")) == "bridge: frozen"
    assert h.rollup.tip() == tip


# ---- exits ----


def test_register_exit__each_trader__equity_of_the_state_machine(s: Scene) -> None:
    h = s.h
    _frozen(s)
    claims = 0
    for i in s.traders():
        result = _register(s, i)
        (event,) = h.bridge.exit_registered_from_receipt(result.receipt)  # type: ignore[attr-defined]
        equity = exit_equity(h.state, user_address(i))
        assert (event.account, event.recipient, event.equity, event.claim) == (
            user_address(i),
            user_address(i),
            equity,
            exit_claim(equity),
        )
        info = h.bridge.exit_of(user_address(i))
        assert (info.claim, info.registered, info.paid) == (exit_claim(equity), True, False)
        claims += exit_claim(equity)
    assert exit_equity(h.state, user_address(C)) < 0  # the loser claims nothing
    assert h.bridge.exit_claims() == claims


def test_register_exit__twice__refused(s: Scene) -> None:
    _frozen(s)
    _register(s, A)
    assert _reason(lambda: _register(s, A)) == "bridge: already exited"


def test_register_exit__wrong_proofs__refused_with_their_reason(s: Scene) -> None:
    h = s.h
    _fund(h, A)
    a = Sender.from_key(user_key(A))
    proof = exit_proof(h.state, user_address(A))
    other = exit_proof(h.state, user_address(B))
    register = h.bridge.register_exit
    assert _reason(lambda: register(a, user_address(A), proof.account_witness, proof.markets_witness)) == (
        "bridge: not frozen"
    )
    _frozen(s)
    richer = replace(
        proof.account_witness, value=(10**9).to_bytes(32, "big") + proof.account_witness.value[32:]
    )
    marked_up = bytearray(proof.markets_witness.value)
    marked_up[0:8] = (1_000).to_bytes(8, "big")  # market 0's mark
    cases: list[tuple[Witness, Witness, bytes, str]] = [
        (other.account_witness, proof.markets_witness, user_address(A), "bridge: bad account witness"),
        (richer, proof.markets_witness, user_address(A), "bridge: bad account witness"),
        (
            proof.account_witness,
            replace(proof.markets_witness, value=bytes(marked_up)),
            user_address(A),
            "bridge: bad markets witness",
        ),
        (
            proof.account_witness,
            h.state.tree.witness(keccak(b"not markets")),
            user_address(A),
            "bridge: bad markets witness",
        ),
        (proof.account_witness, proof.markets_witness, bytes(20), "bridge: zero recipient"),
    ]
    for account_w, markets_w, recipient, reason in cases:
        call = lambda r=recipient, aw=account_w, mw=markets_w: register(a, r, aw, mw)  # noqa: E731
        assert _reason(call) == reason
    assert h.state.tree.witness(markets_key()) == proof.markets_witness
    # an account that never was: its absence checks, and there is nothing to exit
    nobody = Sender.from_key(user_key(D))
    _fund(h, D)
    absent = exit_proof(h.state, user_address(D))
    assert _reason(
        lambda: register(nobody, user_address(D), absent.account_witness, absent.markets_witness)
    ) == ("bridge: no account")
    assert h.bridge.exit_claims() == 0


def test_register_exit__after_the_window__refused(s: Scene) -> None:
    at = _frozen(s)
    s.h.travel_to(at + EXIT_WINDOW_SECONDS)
    assert _reason(lambda: _register(s, A)) == "bridge: exit window closed"


def test_pay_exit__window_open_unregistered_or_twice__refused(s: Scene) -> None:
    h = s.h
    at = _frozen(s)
    _register(s, A)
    payer = h.account(9)
    assert _reason(lambda: h.bridge.pay_exit(payer, user_address(A))) == "bridge: exit window open"
    h.travel_to(at + EXIT_WINDOW_SECONDS)
    assert _reason(lambda: h.bridge.pay_exit(payer, user_address(B))) == "bridge: no exit"
    h.bridge.pay_exit(payer, user_address(A))
    assert _reason(lambda: h.bridge.pay_exit(payer, user_address(A))) == "bridge: exit already paid"


def _pay_all(s: Scene) -> dict[int, int]:
    h = s.h
    out = {}
    for i in s.traders():
        result = h.bridge.pay_exit(h.account(9), user_address(i))
        (event,) = h.bridge.exit_paid_from_receipt(result.receipt)
        out[i] = event.amount
    return out


def test_pay_exit__withdrawal_claimed_in_the_window__loss_beyond_insurance_shared_pro_rata(s: Scene) -> None:
    h = s.h
    at = _frozen(s)
    for i in s.traders():
        _register(s, i)
    h.bridge.submit_claim(h.account(9), s.withdrawal)  # paid in full, as usual
    assert h.token.balance_of("0x" + L1_RECIPIENT.hex()) == WITHDRAWN
    held = h.token.balance_of(h.bridge.address)
    refund = s.late_deposit[2]
    h.travel_to(at + EXIT_WINDOW_SECONDS)
    claims = {i: exit_claim(exit_equity(h.state, user_address(i))) for i in s.traders()}
    total = sum(claims.values())
    pool = exit_pool(held - refund, total)
    # the loser's debt exceeds the insurance fund: the winners share the rest
    loss = -exit_equity(h.state, user_address(C))
    assert loss > get_insurance(h.state) and pool == total - loss + get_insurance(h.state) < total
    balances = {i: h.token.balance_of(user_address(i)) for i in s.traders()}
    paid = _pay_all(s)
    assert paid == {i: exit_payout(c, pool, total) for i, c in claims.items()}
    assert {i: h.token.balance_of(user_address(i)) - balances[i] for i in s.traders()} == paid
    assert h.bridge.exit_pool() == (pool, True) and h.bridge.exits_paid() == sum(paid.values()) <= pool
    assert h.token.balance_of(h.bridge.address) == held - sum(paid.values()) >= refund  # the refund stays


def test_claim_withdrawal__after_the_window__only_if_what_the_exits_leave_covers_it(s: Scene) -> None:
    h = s.h
    at = _frozen(s)
    for i in s.traders():
        _register(s, i)
    h.travel_to(at + EXIT_WINDOW_SECONDS)
    # not claimed in the window: the pool took it in (the loser's debt goes past the insurance)
    assert (
        _reason(lambda: h.bridge.submit_claim(h.account(9), s.withdrawal)) == "bridge: withdrawal not covered"
    )
    paid = _pay_all(s)
    assert sum(paid.values()) == h.bridge.exit_claims()  # every claim in full


def test_claim_withdrawal__after_the_window_without_a_loser__covered() -> None:
    s = build_scene(loser=False)
    h = s.h
    at = _frozen(s)
    for i in (A, B):
        _register(s, i)
    h.travel_to(at + EXIT_WINDOW_SECONDS)
    h.bridge.submit_claim(h.account(9), s.withdrawal)
    for i in (A, B):
        h.bridge.pay_exit(h.account(9), user_address(i))
    assert h.bridge.exits_paid() == h.bridge.exit_claims()
    assert h.token.balance_of(h.bridge.address) >= s.late_deposit[2]


# ---- refunds ----


def test_claim_refund__unconsumed_deposit__paid_to_its_depositor_once(s: Scene) -> None:
    h = s.h
    index, to, amount = s.late_deposit
    anyone = h.account(9)
    assert _reason(lambda: h.bridge.claim_refund(anyone, index, to, amount)) == "bridge: not frozen"
    _frozen(s)
    assert h.bridge.refunds_outstanding() == amount
    assert _reason(lambda: h.bridge.claim_refund(anyone, index, to, amount + 1)) == "bridge: not a deposit"
    assert _reason(lambda: h.bridge.claim_refund(anyone, 0, to, amount)) == "bridge: deposit consumed"
    depositor = h.account(LATE_DEPOSITOR).address
    before = h.token.balance_of(depositor)
    result = h.bridge.claim_refund(anyone, index, to, amount)
    (event,) = h.bridge.deposit_refunded_from_receipt(result.receipt)
    assert (event.index, event.depositor, event.to, event.amount) == (
        index,
        bytes.fromhex(depositor[2:]),
        to,
        amount,
    )
    assert h.token.balance_of(depositor) - before == amount
    assert h.bridge.refunds_outstanding() == 0
    assert _reason(lambda: h.bridge.claim_refund(anyone, index, to, amount)) == "bridge: already refunded"
