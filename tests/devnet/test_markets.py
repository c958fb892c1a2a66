"""The devnet's governance messages list its markets and committee when a batch consumes them."""

from __future__ import annotations

from devnet.markets import COMMITTEE_THRESHOLD, MARKETS, devnet_committee, governance_payloads
from sequencer.stf.codec import encode_tx, message_hash
from sequencer.stf.state import State, get_committee, get_markets, get_next_deposit_index
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import ChainConfig, L1Context, L1Message

CONFIG = ChainConfig(31337, b"\x11" * 20)


def test_governance_payloads__list_both_markets_and_the_committee() -> None:
    payloads = governance_payloads()
    ctx = L1Context(len(payloads), {i: message_hash(i, p) for i, p in enumerate(payloads)}, 1)
    state = State()
    for i, payload in enumerate(payloads):
        outcome = apply_tx(state, encode_tx(L1Message(i, payload)), ctx, CONFIG)
        assert outcome.applied, outcome.error
    assert get_next_deposit_index(state) == len(payloads)
    assert [m.params for m in get_markets(state)] == [m.params for m in MARKETS]
    committee = get_committee(state)
    assert committee == devnet_committee() and committee.threshold == COMMITTEE_THRESHOLD
