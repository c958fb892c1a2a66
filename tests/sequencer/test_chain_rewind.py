"""Rewinding the derived chain when the L1 reorganises: taking back the events of the blocks after
a fork leaves the chain exactly as if it had read only up to the fork, whatever the events were
(queue entries, valid and wrong batches, a revert, a fraud proof)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import pytest

from devnet.faulty import corrupt
from sequencer.builder import build_batch
from sequencer.mempool import PendingTx
from sequencer.stf.chain import Chain
from sequencer.stf.codec import encode_tx, tx_hash
from sequencer.stf.eip712 import sign_transfer
from sequencer.stf.l1types import L1Event, L1Fraud
from sequencer.stf.state import state_root
from tests.sequencer.test_chain import ADDRS, CONFIG, KEYS, L2_TIME, FakeRollup


def transfer(nonce: int, amount: int = 5) -> PendingTx:
    tx = sign_transfer(KEYS[0], ADDRS[1], amount, nonce, CONFIG)
    raw = encode_tx(tx)
    return PendingTx(nonce, tx_hash(raw), raw, tx)


@functools.cache
def history() -> tuple[L1Event, ...]:
    """Deposits; a batch of them; a transfer; a deposit; a wrong batch and one on top of it; the
    fraud proven and both reverted; an honest batch in their place; one more deposit."""
    l1, chain = FakeRollup(), Chain(CONFIG)
    events: list[L1Event] = []

    def emit(event: L1Event) -> None:
        events.append(event)
        chain.apply_event(event)

    def batch(pending: list[PendingTx], wrong: bool = False) -> None:
        built = build_batch(chain.state, chain.queue, pending, CONFIG, l2_time=L2_TIME)
        assert built is not None
        emit(l1.append(corrupt(built, root_at=0) if wrong else built))

    emit(l1.deposit(ADDRS[0], 1_000))
    emit(l1.deposit(ADDRS[1], 1_000))
    batch([])
    batch([transfer(0)])
    emit(l1.deposit(ADDRS[2], 300))
    batch([transfer(1)], wrong=True)
    batch([transfer(2)])  # on top of the wrong one: never checked
    l1.block += 1  # FakeRollup numbers the blocks: one event each
    emit(L1Fraud(2, 0, b"\x01" * 20, b"\x02" * 20, 10, l1.block, 0))
    emit(l1.revert_from(2))
    batch([transfer(1, amount=7)])
    emit(l1.deposit(ADDRS[3], 50))
    assert chain.fraud is None and chain.valid_count == 3 and len(chain.reverts_seen) == 1
    return tuple(events)


def fingerprint(chain: Chain) -> dict[str, Any]:
    """Everything a service reads from a chain."""
    return {
        "root": state_root(chain.state),
        "batches": [b.header.hash() for b in chain.batches],
        "valid": chain.valid_count,
        "fraud": chain.fraud,
        "unreadable": chain.unreadable,
        "queue": sorted((i, e.hash) for i, e in chain.queue.items()),
        "reverts": list(chain.reverts_seen),
        "frauds": list(chain.frauds_seen),
        "tip": chain.tip_root,
        "snapshot_roots": {i: state_root(s) for i, s in sorted(chain.snapshots.items())},
    }


def folded(events: Iterable[L1Event]) -> Chain:
    chain = Chain(CONFIG)
    for event in events:
        chain.apply_event(event)
    return chain


@pytest.mark.parametrize("fork", range(0, 12))
def test_rewind__to_any_block__as_if_read_up_to_it__and_reading_again_gives_the_same_chain(fork: int) -> None:
    events = history()
    chain = folded(events)
    full = fingerprint(chain)
    undone = chain.rewind(fork).events
    assert undone == [e for e in events if e.l1_block > fork]
    up_to_fork = fingerprint(folded([e for e in events if e.l1_block <= fork]))
    # a snapshot of a batch after the fork may be left over: it is never read (no such batch)
    now = fingerprint(chain)
    now["snapshot_roots"] = {i: r for i, r in now["snapshot_roots"].items() if i < len(chain.batches)}
    up_to_fork["snapshot_roots"] = {
        i: r for i, r in up_to_fork["snapshot_roots"].items() if i < len(chain.batches)
    }
    assert now == up_to_fork
    for event in undone:
        chain.apply_event(event)
    assert fingerprint(chain)["root"] == full["root"] and fingerprint(chain)["batches"] == full["batches"]
    assert (chain.valid_count, chain.fraud, chain.reverts_seen) == (3, None, folded(events).reverts_seen)


def test_rewind__the_revert_taken_back__wrong_batch_and_the_fraud_are_back() -> None:
    events = history()
    chain = folded(events)
    revert_block = next(e.l1_block for e in events if type(e).__name__ == "L1Revert")
    rewound = chain.rewind(revert_block - 1)
    assert (rewound.from_index, rewound.batches_gone, rewound.batches_back) == (2, 1, 2)
    assert len(chain.batches) == 4 and chain.valid_count == 2
    assert chain.fraud is not None and (chain.fraud.batch_index, chain.fraud.tx_index) == (2, 0)
    assert len(chain.frauds_seen) == 1 and chain.reverts_seen == []


def test_settle__journal_forgotten_up_to_it__rewinding_before_it_refused_and_changes_nothing() -> None:
    events = history()
    chain = folded(events)
    chain.settle(8)  # the fraud proof's block: the revert, a batch and a deposit are after it
    assert [f.event.l1_block for f in chain.journal] == [9, 10, 11]
    before = fingerprint(chain)
    with pytest.raises(ValueError, match="settled up to 8"):
        chain.rewind(7)
    assert fingerprint(chain) == before
    chain.rewind(8)
    assert chain.fraud is not None and len(chain.batches) == 4


def test_settle__events_of_settled_blocks__not_journalled() -> None:
    events = history()
    chain = Chain(CONFIG)
    chain.settle(events[-1].l1_block)
    for event in events:
        chain.apply_event(event)
    assert not chain.journal and chain.rewind(events[-1].l1_block).events == []
