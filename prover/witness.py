"""Witnesses for one transaction (protocol section 2, "Witnesses"), for the L1 FraudVerifier.

A transaction's witnesses are sequential: witness j is taken against the root after writes
0..j-1 of the same transaction. For a no-op every witness is taken against the unchanged root.
"""

from __future__ import annotations

from sequencer.stf.codec import decode_tx
from sequencer.stf.errors import DecodeError, InvalidTransaction
from sequencer.stf.smt import Witness
from sequencer.stf.state import State
from sequencer.stf.transition import plan_tx, touched_keys
from sequencer.stf.types import ChainConfig, L1Context


def build_tx_witnesses(
    state: State, raw: bytes, ctx: L1Context, config: ChainConfig
) -> tuple[list[Witness], bytes]:
    """The witnesses of `raw` on `state` and the post root; advances `state` as `apply_tx` does.

    One witness per touched key (repeats removed), in order; witness j is taken after the writes
    of witnesses 0..j-1, and a key is written only when the transaction applies and its value
    changes (protocol section 2, "A transaction's witnesses"). Undecodable bytes touch nothing:
    `([], root)`. A transaction that breaks a rule gets one witness per touched key against the
    unchanged root, and the state is left unchanged.
    """
    tree = state.tree
    try:
        tx = decode_tx(raw)
    except DecodeError:
        return [], tree.root
    keys = touched_keys(tx, config)
    try:
        writes = plan_tx(state, tx, ctx, config)
    except InvalidTransaction:
        return [tree.witness(key) for key in keys], tree.root
    if not writes.keys() <= set(keys):
        raise AssertionError(f"{type(tx).__name__} writes a key it does not list as touched")
    witnesses: list[Witness] = []
    for key in keys:
        w = tree.witness(key)
        witnesses.append(w)
        new_value = writes.get(key)
        if new_value is not None and new_value != w.value:
            tree.set(key, new_value)
    return witnesses, tree.root
