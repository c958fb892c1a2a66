"""The exit's equity (docs/protocol.md section 12) is the state machine's: `escape.vy` (with the
rules contracts' `margin.vy`), which the Bridge runs on an exiting account's leaves, against
`sequencer.stf.escape.exit_equity`, over random accounts and markets (funding not settled yet,
positions in up to 16 markets, signed collateral, marks up to 2^63)."""

from __future__ import annotations

import contracts_harness
from exchange_strategies import accounts, markets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.contract import Contract

from contracts.bindings import Sender
from sequencer.stf.codec import encode_account, encode_markets
from sequencer.stf.escape import exit_equity
from sequencer.stf.keys import account_key
from sequencer.stf.state import State, set_account, set_markets
from sequencer.stf.types import Account, Market

ACCOUNT = b"\xe5" * 20

_LIB: list[Contract] = []


def _lib() -> Contract:
    """The library harness, deployed once for the module's examples."""
    if not _LIB:
        w3 = contracts_harness.tester_web3()
        _LIB.append(
            contracts_harness.deploy_test_contract(w3, Sender.unlocked(w3.eth.accounts[0]), "LibHarness")
        )
    return _LIB[0]


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Market], Account | None]:
    listed = draw(markets(draw(st.integers(0, 16))))
    account = draw(st.one_of(st.none(), accounts(listed), accounts(listed, rich=True)))
    return listed, account


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_exit_equity__random_accounts_and_markets__vyper_equals_the_state_machine(
    case: tuple[list[Market], Account | None],
) -> None:
    listed, account = case
    state = State()
    if listed:
        set_markets(state, listed)
    if account is not None:
        set_account(state, ACCOUNT, account)
    account_value = state.tree.get(account_key(ACCOUNT)) or b""
    markets_value = encode_markets(listed) if listed else b""
    assert account is None or account_value == encode_account(account)
    assert _lib().functions.exit_equity(account_value, markets_value).call() == exit_equity(state, ACCOUNT)
