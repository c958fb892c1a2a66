"""The escape hatch's rule (docs/protocol.md section 12) over random exchange states built with the
state machine: conservation makes the exits fair, and the Bridge never pays out more than it holds.

Each example plays a random history (`test_exchange_properties.play`: fills, bundles, oracle
moves, funding, liquidations, deleveraging, transfers, withdrawals), then moves the prices (down
90% to up 300%), and freezes its final state.
The Bridge then holds every deposit consumed, the unconsumed ones (refunds owed) and the
withdrawals not claimed before the freeze. `BridgeBook` follows the Bridge's rules
(`contracts/Bridge.vy`) with the state machine's statement of them (`sequencer.stf.escape`), and a
random interleaving of registrations (some repeated), refunds, withdrawal claims (in the window and
after it) and payouts (some repeated, some of accounts never registered) runs against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exchange_fixtures import BTC, ETH, TRADERS
from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st
from test_exchange_properties import N_TRADERS, actions, collaterals, insurances, play

from sequencer.stf.escape import exit_claim, exit_equity, exit_payout, exit_pool
from sequencer.stf.state import get_insurance


@dataclass
class BridgeBook:
    """The Bridge's money once frozen, by its rules; each method answers whether it paid."""

    held: int
    """Its token balance."""
    refunds_owed: int
    claims: dict[bytes, int] = field(default_factory=dict)
    paid: dict[bytes, int] = field(default_factory=dict)
    pool: int | None = None
    window_over: bool = False
    out: int = 0
    """Everything paid out since the freeze."""

    def _pay(self, amount: int) -> None:
        assert 0 <= amount <= self.held, "the Bridge pays more than it holds"
        self.held -= amount
        self.out += amount

    def register(self, account: bytes, equity: int) -> bool:
        if self.window_over or account in self.claims:
            return False  # "exit window closed", "already exited"
        self.claims[account] = exit_claim(equity)
        return True

    def _fixed_pool(self) -> int:
        if self.pool is None:
            self.pool = exit_pool(self.held - self.refunds_owed, sum(self.claims.values()))
        return self.pool

    def pay_exit(self, account: bytes) -> bool:
        if not self.window_over or account not in self.claims or account in self.paid:
            return False  # "exit window open", "no exit", "exit already paid"
        amount = exit_payout(self.claims[account], self._fixed_pool(), sum(self.claims.values()))
        self._pay(amount)
        self.paid[account] = amount
        return True

    def refund(self, amount: int) -> bool:
        self._pay(amount)
        self.refunds_owed -= amount
        return True

    def claim_withdrawal(self, amount: int) -> bool:
        reserved = self.refunds_owed
        if self.window_over:
            reserved += self._fixed_pool() - sum(self.paid.values())
        if self.held < amount + reserved:
            return False  # "withdrawal not covered"
        self._pay(amount)
        return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    collaterals,
    insurances,
    actions,
    st.lists(st.tuples(st.sampled_from([ETH, BTC]), st.integers(-90, 300)), min_size=1, max_size=2),
    st.lists(st.integers(1, 10_000), max_size=3),
    st.data(),
)
def test_exits__random_frozen_states__never_more_than_held_each_paid_once(
    collateral: list[int],
    insurance: int,
    history: list[tuple[object, ...]],
    shocks: list[tuple[int, int]],
    refunds: list[int],
    data: st.DataObject,
) -> None:
    # the last prices may move far (the sequencers left before anyone was liquidated)
    world = play(collateral, insurance, history + [("oracle", m, pct, 1) for m, pct in shocks])
    traders = TRADERS[:N_TRADERS]
    equities = {t: exit_equity(world.state, t) for t in traders}
    fund = get_insurance(world.state)
    # conservation, with funding settled and fees paid: what the exits may take
    assert sum(equities.values()) + fund == world.deposited - world.withdrawn

    # the withdrawals: claimed before the freeze, in the exit window, or after it
    before = data.draw(st.integers(0, world.withdrawn))
    in_window = data.draw(st.integers(0, world.withdrawn - before))
    late = world.withdrawn - before - in_window
    book = BridgeBook(held=world.deposited + sum(refunds) - before, refunds_owed=sum(refunds))
    held_at_freeze = book.held

    window = [("register", t) for t in data.draw(st.lists(st.sampled_from(traders), max_size=2 * N_TRADERS))]
    window += [("withdraw", in_window)] + [("refund", r) for r in refunds]
    after = [("pay", t) for t in data.draw(st.lists(st.sampled_from(traders), max_size=2 * N_TRADERS))]
    after += [("pay", t) for t in traders] + [("withdraw", late)]
    outcomes: dict[str, list[bool]] = {"withdraw": []}
    for phase in (data.draw(st.permutations(window)), data.draw(st.permutations(after))):
        for kind, arg in phase:
            if kind == "register":
                assert isinstance(arg, bytes)
                book.register(arg, equities[arg])
            elif kind == "pay":
                assert isinstance(arg, bytes)
                book.pay_exit(arg)
            elif kind == "refund":
                assert isinstance(arg, int)
                book.refund(arg)
            else:
                assert isinstance(arg, int)
                outcomes["withdraw"].append(book.claim_withdrawal(arg))
        book.window_over = True

    # once each, never more than the claim, never more than what was held
    assert set(book.paid) == set(book.claims)
    assert all(book.paid[t] <= book.claims[t] for t in book.paid)
    assert book.out <= held_at_freeze and book.held >= 0 and book.refunds_owed == 0
    assert sum(book.paid.values()) <= (book.pool or 0)
    losses = sum(-e for e in equities.values() if e < 0)
    event("losses beyond the insurance fund" if losses > fund else "losses covered")
    target(float(losses - fund), label="debt beyond the insurance fund")
    if losses <= fund:
        # the Insurance fund covers every debt: every exit and every withdrawal is paid in full
        assert book.paid == book.claims
        assert all(outcomes["withdraw"])
