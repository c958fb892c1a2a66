"""The forced transaction (protocol section 3, "ForcedTx"): a user's signed Transfer, Withdraw or
Cancel forced through the L1 queue, so that no sequencer can censor it.

It lives apart from `funds` (the queue's rules) because it applies rules of both `funds` and
`trading`, which itself builds on `funds`.
"""

from __future__ import annotations

from sequencer.stf.codec import forced_hash, forced_inner
from sequencer.stf.errors import InvalidTransaction
from sequencer.stf.funds import Reader, Writes, consume_queue, plan_transfer, plan_withdraw
from sequencer.stf.keys import global_key
from sequencer.stf.trading import plan_cancel
from sequencer.stf.types import Cancel, ChainConfig, ForcedTx, L1Context, Transfer, Withdraw


def plan_forced_tx(tree: Reader, tx: ForcedTx, ctx: L1Context, config: ChainConfig) -> Writes:
    """ForcedTx: consume a forced queue entry, then apply its inner Transfer, Withdraw or Cancel
    under the inner transaction's own rules (its signature always checked: no sequencer admitted
    it).

    An inner transaction that does not decode, is of another type or breaks a rule changes
    nothing but the queue position, so no forced entry can block the queue.
    """
    g_value = consume_queue(tree, tx.queue_index, forced_hash(tx.queue_index, tx.tx), ctx)
    writes: Writes = {global_key(): g_value}
    try:
        inner = forced_inner(tx)
        if type(inner) is Transfer:
            writes.update(plan_transfer(tree, inner, ctx, config, False))
        elif type(inner) is Cancel:
            writes.update(plan_cancel(tree, inner, config, False))
        else:
            assert type(inner) is Withdraw
            writes.update(plan_withdraw(tree, inner, ctx, config, False))
    except InvalidTransaction:
        pass  # refused inner transaction: the entry is consumed and changes nothing else
    return writes
