"""A restart replays L1 in windows; acknowledged transactions valid on the tip must survive it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from contracts.l1 import Mined
from sequencer.builder import build_batch
from sequencer.mempool import PendingTx
from sequencer.node import SequencerNode
from sequencer.stf.chain import Chain
from sequencer.stf.codec import encode_tx, tx_hash
from sequencer.stf.eip712 import sign_transfer
from sequencer.stf.l1types import L1Event
from sequencer.store import Store
from tests.sequencer.test_chain import ADDRS, CONFIG, KEYS, L2_TIME, FakeRollup

FOREIGN, OURS = b"\xbb" * 20, b"\xaa" * 20


class Reader:
    def __init__(self, log: list[L1Event]) -> None:
        self.log = log

    def head_block(self) -> int:
        return len(self.log)

    def block_hash(self, number: int) -> bytes | None:
        return number.to_bytes(32, "big") if number <= len(self.log) else None

    def events(self, a: int, b: int) -> list[L1Event]:
        return self.log[max(a, 1) - 1 : b]


class Writer:
    address = OURS

    def ensure_bonded(self, bond_wei: int) -> None:
        return None

    def head_timestamp(self) -> int:
        return L2_TIME

    def append_batch(self, *args: object) -> Mined:
        raise RuntimeError("not in this test")


def test_start__long_history_with_foreign_batches__acknowledged_tx_kept(tmp_path: Path) -> None:
    l1, chain, log = FakeRollup(), Chain(CONFIG), []
    for event in (l1.deposit(ADDRS[0], 1000),):
        log.append(event)
        chain.apply_event(event)
    b0 = l1.append(build_batch(chain.state, chain.queue, [], CONFIG, l2_time=L2_TIME), sequencer=FOREIGN)
    chain.apply_event(b0)
    t0 = sign_transfer(KEYS[0], ADDRS[1], 10, 0, CONFIG)  # another sequencer includes nonce 0
    p0 = PendingTx(0, tx_hash(encode_tx(t0)), encode_tx(t0), t0)
    b1 = l1.append(build_batch(chain.state, chain.queue, [p0], CONFIG, l2_time=L2_TIME), sequencer=FOREIGN)
    log += [b0, b1]
    store = Store(tmp_path / "log.sqlite")
    t1 = sign_transfer(KEYS[0], ADDRS[2], 20, 1, CONFIG)  # we acknowledged nonce 1 before a crash
    h1 = tx_hash(encode_tx(t1))
    store.add(h1, encode_tx(t1))
    node = SequencerNode(CONFIG, store, Reader(log), Writer(), start_block=1)
    node.follower.cursor.window_blocks = 1  # a history of many windows
    asyncio.run(node.start())
    row = store.get(h1)
    assert row is not None and (row.status, row.reason) == ("pending", None)
    assert [p.hash for p in node.mempool.pending] == [h1]
    store.close()
