"""The vectors of `spec_vectors` (the rules docs/protocol.md makes exact) through the Vyper
FraudVerifier: it computes the state machine's root, which is the vector's own; bytes with a field
out of range decode on-chain too (they need their witnesses), and undecodable bytes touch nothing
(no witness, the pre-state root)."""

from __future__ import annotations

import pytest
from contracts_harness import StubVerifier
from exchange_fixtures import NOW
from spec_vectors import DECODABLE_INVALID, SPEC_VECTORS, UNDECODABLE
from stf_vectors import CONFIG, Vector, state_of

from contracts.bindings import TransactionReverted
from sequencer.stf.types import L1Context


@pytest.fixture(scope="module")
def sv() -> StubVerifier:
    """One verifier-only deployment for the module."""
    return StubVerifier.create(CONFIG)


@pytest.mark.parametrize("v", SPEC_VECTORS, ids=[v.name for v in SPEC_VECTORS])
def test_spec_vector__verifier_root_equals_stf_and_the_vector(sv: StubVerifier, v: Vector) -> None:
    state = state_of(v.pre)
    onchain, expected = sv.roots(state, v.tx, v.ctx)
    assert onchain == expected == state_of(v.post).tree.root


CTX = L1Context(0, {}, NOW)


@pytest.mark.parametrize(("name", "raw"), DECODABLE_INVALID, ids=[c[0] for c in DECODABLE_INVALID])
def test_field_out_of_range__decodes_on_chain__needs_witnesses_no_op(
    sv: StubVerifier, name: str, raw: bytes
) -> None:
    state = state_of(SPEC_VECTORS[0].pre)
    onchain, expected = sv.roots(state, raw, CTX)
    assert onchain == expected == state.tree.root
    with pytest.raises(TransactionReverted) as err:
        sv.verifier.apply_tx(state.tree.root, raw, [], CTX.queue_end, CTX.l2_time)
    assert err.value.reason == "verifier: bad witness"


@pytest.mark.parametrize(("name", "raw"), UNDECODABLE, ids=[c[0] for c in UNDECODABLE])
def test_undecodable__touches_nothing_on_chain(sv: StubVerifier, name: str, raw: bytes) -> None:
    state = state_of(SPEC_VECTORS[0].pre)
    onchain, expected = sv.roots(state, raw, CTX)
    assert onchain == expected == state.tree.root
    assert sv.verifier.apply_tx(state.tree.root, raw, [], CTX.queue_end, CTX.l2_time) == state.tree.root
