"""The prover's witness builder."""

from __future__ import annotations

from stf_vectors import ALICE, ALICE_KEY, BASE, CONFIG, state_of

from prover.witness import build_tx_witnesses
from sequencer.stf.codec import encode_tx
from sequencer.stf.eip712 import sign_transfer
from sequencer.stf.keys import account_key, markets_key
from sequencer.stf.smt import TERMINAL_LEAF, check_witness
from sequencer.stf.state import get_account, state_root
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import Account, L1Context


def test_undecodable__no_witnesses_root_unchanged() -> None:
    state = state_of(BASE)
    root = state_root(state)
    assert build_tx_witnesses(state, b"\x07junk", L1Context(0), CONFIG) == ([], root)
    assert state_root(state) == root


def test_self_transfer__one_witness_per_distinct_key_against_unchanged_root() -> None:
    state = state_of(BASE)
    root = state_root(state)
    raw = encode_tx(sign_transfer(ALICE_KEY, ALICE, 1, 3, CONFIG))
    witnesses, post = build_tx_witnesses(state, raw, L1Context(0), CONFIG)
    assert post == root == state_root(state)
    assert [w.key for w in witnesses] == [account_key(ALICE), markets_key()]  # the repeat is listed once
    assert all(check_witness(w, root) for w in witnesses)


def test_valid_transfer__advances_state_like_apply_tx() -> None:
    state, twin = state_of(BASE), state_of(BASE)
    to = b"\x77" * 20
    raw = encode_tx(sign_transfer(ALICE_KEY, to, 10, 3, CONFIG))
    witnesses, post = build_tx_witnesses(state, raw, L1Context(0), CONFIG)
    assert post == apply_tx(twin, raw, L1Context(0), CONFIG).post_root == state_root(state)
    assert witnesses[0].terminal == TERMINAL_LEAF
    assert witnesses[1].value == b"" and witnesses[1].terminal != TERMINAL_LEAF
    assert get_account(state, ALICE) == Account(990, 4)
