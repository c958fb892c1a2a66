"""The rules docs/protocol.md makes exact, held by vectors (`spec_vectors`): trading and risk
rules, the Withdrawal key's nonce, what decodes, and the transaction hash."""

from __future__ import annotations

import pytest
from exchange_fixtures import NOW, trader_key
from spec_vectors import DECODABLE_INVALID, SPEC_VECTORS, UNDECODABLE
from stf_vectors import CONFIG, Vector, ref_root, state_of

from prover.witness import build_tx_witnesses
from sequencer.stf.codec import decode_tx, encode_tx, forced_hash, tx_hash
from sequencer.stf.constants import MAX_TX_BYTES, TX_TYPE_FORCED
from sequencer.stf.eip712 import sign_withdraw
from sequencer.stf.errors import DecodeError
from sequencer.stf.hashing import keccak
from sequencer.stf.state import copy_state, state_root
from sequencer.stf.transition import apply_tx, touched_keys
from sequencer.stf.types import ForcedTx, L1Context


def test_spec_vectors__names_unique() -> None:
    assert len({v.name for v in SPEC_VECTORS}) == len(SPEC_VECTORS)


@pytest.mark.parametrize("v", SPEC_VECTORS, ids=[v.name for v in SPEC_VECTORS])
def test_spec_vector(v: Vector) -> None:
    pre = state_of(v.pre)
    state = copy_state(pre)
    outcome = apply_tx(state, v.tx, v.ctx, CONFIG)
    assert (None if outcome.error is None else outcome.error.code) == v.error
    assert outcome.applied == (v.error is None)
    assert dict(state.tree.items()) == v.post
    assert outcome.post_root == state_root(state) == ref_root(v.post)
    if v.error is not None:
        assert outcome.post_root == state_root(pre)


@pytest.mark.parametrize(("name", "raw"), DECODABLE_INVALID, ids=[c[0] for c in DECODABLE_INVALID])
def test_decode__field_out_of_range__decodes_touches_its_keys_and_is_a_no_op(name: str, raw: bytes) -> None:
    tx = decode_tx(raw)
    assert encode_tx(tx) == raw
    assert touched_keys(tx, CONFIG)  # a prover must send a witness for each
    state = state_of(SPEC_VECTORS[0].pre)
    outcome = apply_tx(copy_state(state), raw, L1Context(0, {}, NOW), CONFIG)
    assert not outcome.applied and outcome.error is not None and outcome.error.code != "malformed"
    assert outcome.post_root == state_root(state)


@pytest.mark.parametrize(("name", "raw"), UNDECODABLE, ids=[c[0] for c in UNDECODABLE])
def test_decode__undecodable__touches_nothing(name: str, raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_tx(raw)
    state = state_of(SPEC_VECTORS[0].pre)
    outcome = apply_tx(copy_state(state), raw, L1Context(0, {}, NOW), CONFIG)
    assert not outcome.applied and isinstance(outcome.error, DecodeError)
    assert outcome.post_root == state_root(state)
    witnesses, post_root = build_tx_witnesses(copy_state(state), raw, L1Context(0, {}, NOW), CONFIG)
    assert witnesses == [] and post_root == state_root(state)


def test_decode__longer_than_max_tx_bytes__undecodable() -> None:
    with pytest.raises(DecodeError):
        decode_tx(b"\x04" + bytes(8) + b"\x01" * (MAX_TX_BYTES - 8))
    assert decode_tx(b"\x04" + bytes(8) + b"\x01" * (MAX_TX_BYTES - 9))


def test_tx_hash__keccak_of_the_encoded_bytes__a_forced_one_is_its_wrapper_s() -> None:
    withdraw = encode_tx(sign_withdraw(trader_key(0), b"\x0e" * 20, 10, 0, CONFIG))
    assert tx_hash(withdraw) == keccak(withdraw)
    forced = encode_tx(ForcedTx(7, withdraw))
    assert forced == bytes((TX_TYPE_FORCED,)) + (7).to_bytes(8, "big") + withdraw
    assert tx_hash(forced) == keccak(forced) != keccak(withdraw)
    ctx = L1Context(8, {7: forced_hash(7, withdraw)}, NOW)
    state = state_of(SPEC_VECTORS[0].pre)
    assert apply_tx(copy_state(state), forced, ctx, CONFIG).tx_hash == keccak(forced)
    assert apply_tx(copy_state(state), b"\xff", ctx, CONFIG).tx_hash == keccak(b"\xff")
