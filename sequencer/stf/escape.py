"""The escape hatch (protocol section 12): what each account takes out of a frozen rollup.

Once the Rollup is frozen, its tip (every batch final) is the state every account exits from. An
account's **equity** there is `equity(settle(A))` of `sequencer.stf.margin`: funding settled at
each market's funding index, positions valued at each market's last mark, i.e. closed there. Its
**claim** is that equity if positive, else 0 (a loser is paid nothing). The exits share a **pool**:
`min(total claims, available)`, where `available` is what the Bridge holds for them once the exit
window is over (its balance less the refunds it owes), and each claim is paid `claim * pool //
total claims`. The rule is the Bridge's (`contracts/Bridge.vy`); the functions here are its one
Python statement, for the SDK, the tests and the demo.

Why it never pays more than the Bridge holds: the state machine conserves money, so
`sum(equity) + Insurance = deposits consumed - withdrawals` (held by
`tests/stf/test_exchange_properties.py` and `tests/stf/test_escape_exits.py`); the losers' shortfall is
taken first from Insurance (it is in `available`) and the rest from the winners, pro rata.
"""

from __future__ import annotations

from dataclasses import dataclass

from sequencer.stf.codec import read_acct
from sequencer.stf.keys import account_key, markets_key
from sequencer.stf.margin import equity, read_markets, settle
from sequencer.stf.smt import Witness
from sequencer.stf.state import State, state_root


def exit_equity(state: State, account: bytes) -> int:
    """`account`'s equity in `state`: funding settled, every position at its market's mark."""
    a = read_acct(state.tree.get(account_key(account)))
    markets = read_markets(state.tree.get(markets_key()))
    settle(a, markets)
    return equity(a, markets)


def exit_claim(equity_value: int) -> int:
    """What an exit of `equity_value` claims: the equity if positive, else 0."""
    return max(equity_value, 0)


def exit_pool(available: int, total_claims: int) -> int:
    """What the exits share: every claim if `available` covers them, else `available` (0 if
    negative)."""
    return min(max(available, 0), total_claims)


def exit_payout(claim: int, pool: int, total_claims: int) -> int:
    """One exit's payout: its claim, or `claim * pool // total_claims` when the pool falls short."""
    return claim if pool >= total_claims else claim * pool // total_claims


@dataclass(frozen=True)
class ExitProof:
    """What `Bridge.register_exit` takes, built from the frozen state (L1 data alone)."""

    account: bytes
    """The exiting account (the L1 sender of the registration)."""
    root: bytes
    """The frozen state's root, which both witnesses check against."""
    account_witness: Witness
    """The account's leaf: collateral, nonce and positions."""
    markets_witness: Witness
    """The Markets leaf: every market's mark and funding index."""
    equity: int
    """The equity the Bridge will compute from them (`exit_equity`)."""

    @property
    def claim(self) -> int:
        """`exit_claim(equity)`."""
        return exit_claim(self.equity)


def exit_proof(state: State, account: bytes) -> ExitProof:
    """The witnesses of `account`'s exit from `state` (the frozen tip's state), and its equity."""
    return ExitProof(
        account=account,
        root=state_root(state),
        account_witness=state.tree.witness(account_key(account)),
        markets_witness=state.tree.witness(markets_key()),
        equity=exit_equity(state, account),
    )
