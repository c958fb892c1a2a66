"""A Cancel forced through the L1 queue, in a batch: no Fill of its order applies after it, a Fill
before it stands (the cancel keeps its filled size), and its signature is always checked."""

from __future__ import annotations

from exchange_fixtures import ETH, NOW, TRADERS, acct, cancel, digest, leaves, order, trader_key
from stf_vectors import CONFIG, state_of

from sequencer.stf.codec import encode_tx, forced_hash
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import sign_cancel
from sequencer.stf.errors import OrderCancelled
from sequencer.stf.state import get_account, get_next_deposit_index, get_order_state
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import Cancel, Fill, ForcedTx, L1Context, OrderState

A, B = TRADERS[:2]
ASK = order(1, ETH, SIDE_SELL, 100, 200)
"""B's resting ask, which B force-cancels."""
BID = order(0, ETH, SIDE_BUY, 100, 100)
FILL = encode_tx(Fill(ASK, BID, 100))


def _forced(inner: Cancel) -> tuple[bytes, L1Context]:
    raw = encode_tx(inner)
    return encode_tx(ForcedTx(0, raw)), L1Context(1, {0: forced_hash(0, raw)}, NOW)


def test_batch__forced_cancel_then_a_fill_of_its_order__fill_refused_order_cancelled() -> None:
    state = state_of(leaves({A: acct(100_000), B: acct(100_000)}))
    forced, ctx = _forced(cancel(1, ASK))

    outcomes = [apply_tx(state, raw, ctx, CONFIG) for raw in (forced, FILL)]

    assert [o.applied for o in outcomes] == [True, False]
    assert isinstance(outcomes[1].error, OrderCancelled)
    assert outcomes[1].post_root == outcomes[0].post_root
    assert get_order_state(state, digest(ASK)) == OrderState(0, True)
    assert get_account(state, A).positions == () and get_next_deposit_index(state) == 1


def test_batch__a_fill_then_the_forced_cancel__fill_stands_cancel_keeps_its_filled_size() -> None:
    state = state_of(leaves({A: acct(100_000), B: acct(100_000)}))
    forced, ctx = _forced(cancel(1, ASK))

    outcomes = [apply_tx(state, raw, ctx, CONFIG) for raw in (FILL, forced, FILL)]

    assert [o.applied for o in outcomes] == [True, True, False]
    assert get_order_state(state, digest(ASK)) == OrderState(100, True)
    assert get_account(state, A).positions[0].size == 100


def test_forced_cancel__signed_by_another_trader__only_consumed_even_if_signers_verified() -> None:
    state = state_of(leaves({A: acct(100_000), B: acct(100_000)}))
    forged = Cancel(ASK.order, sign_cancel(trader_key(0), ASK.order, CONFIG))
    forced, ctx = _forced(forged)
    before = state.tree.root

    outcome = apply_tx(state, forced, ctx, CONFIG, signer_verified=True)

    assert outcome.applied and outcome.post_root != before  # the entry is consumed
    assert get_next_deposit_index(state) == 1
    assert get_order_state(state, digest(ASK)) == OrderState(0, False)
    assert apply_tx(state, FILL, ctx, CONFIG).applied  # the order still fills
