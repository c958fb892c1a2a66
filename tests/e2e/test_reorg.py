"""L1 reorganisations on anvil (`anvil_reorg`) under a real sequencer and a real watcher: a batch
taken out, a batch replaced by another sequencer's, a fraud proof taken out. Each ends with the
sequencer, the watcher and the Rollup on one root, and every acknowledged transaction on L1.

One network serves the three scenarios. anvil mines a block per transaction only (no empty blocks
on a timer), so the blocks each reorganisation replaces are exactly those the test names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contracts.bindings import Sender
from contracts.l1 import Web3L1
from devnet.deploy import DeployParams
from devnet.faulty import corrupt
from devnet.orchestrator import SEQ_A, SEQ_B, WATCHER_1, WATCHER_2, Network, Service, get_json
from devnet.procs import rpc_call, wait_until
from sequencer.builder import BuiltBatch, build_batch
from sequencer.client import TraderClient
from sequencer.mempool import PendingTx
from sequencer.stf.chain import Chain
from sequencer.stf.codec import encode_tx, tx_hash
from sequencer.stf.eip712 import address_of, sign_transfer
from tests.e2e.helpers import TOKEN_UNIT, Clients

pytestmark = [pytest.mark.e2e, pytest.mark.anvil, pytest.mark.timeout(240)]

RECIPIENT = address_of(b"\x07" * 32)
WAIT_S = 60.0
"""Longest wait for any one condition."""


@dataclass
class ReorgNet:
    """The network of the three scenarios."""

    net: Network
    clients: Clients
    sequencer: Service
    watcher: Service
    traders: list[bytes]
    """One funded key per scenario role (each trader's nonces are its own scenario's)."""

    def rpc(self, method: str, params: list[Any]) -> Any:
        return rpc_call(self.net.l1_url, method, params, timeout=30.0)

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber", []), 16)

    def batch_block(self, index: int) -> int:
        """The L1 block of batch `index` as the L1 has it now."""
        events = self.clients.rollup.batch_appended_events(self.net.deployment.deploy_block)
        return [e for e in events if e.header.index == index][-1].meta.block_number  # the live one

    def reorg(self, from_block: int, txs: list[dict[str, Any]] | None = None) -> None:
        """Replace every block from `from_block` to the head (with `txs` in the first new one)."""
        self.rpc("anvil_reorg", [self.head() - from_block + 1, [[tx, 0] for tx in txs or []]])

    def transfer(self, trader: int, amount: int) -> str:
        """Send a transfer to the sequencer; returns its hash once it is acknowledged."""
        client = TraderClient(self.sequencer.url, self.traders[trader], self.clients.config)
        try:
            return client.transfer(RECIPIENT, amount).hash
        finally:
            client.close()

    def batched(self, h: str) -> int:
        """Wait until the sequencer has `h` in an L1 batch; returns the batch's index."""
        status = wait_until(
            lambda: (s := get_json(f"{self.sequencer.url}/v1/transactions/{h}"))["status"] == "batched" and s,
            WAIT_S,
            what=f"{h} batched",
        )
        return int(status["batch_index"])

    def reorgs(self) -> tuple[int, int]:
        """How many reorganisations the sequencer and the watcher rewound."""
        return (
            get_json(f"{self.sequencer.url}/health")["l1"]["reorgs"],
            get_json(f"{self.watcher.url}/health")["l1"]["reorgs"],
        )

    def rewound(self, before: tuple[int, int]) -> None:
        """Wait until both nodes have rewound one more reorganisation than `before`."""
        wait_until(
            lambda: all(n > b for n, b in zip(self.reorgs(), before, strict=True)),
            WAIT_S,
            what="both rewound",
        )

    def proofs(self) -> list[dict[str, Any]]:
        """The proofs the watcher sent."""
        return list(get_json(f"{self.watcher.url}/v1/status")["proofs_sent"])

    def one_root(self) -> str:
        """Wait until the sequencer, the watcher and the Rollup agree on every batch and the root,
        with nothing pending and both healthy; returns the root."""

        def agree() -> str | None:
            tip = self.clients.rollup.tip()
            seq = get_json(f"{self.sequencer.url}/v1/status")
            watch = get_json(f"{self.watcher.url}/v1/status")
            root = "0x" + tip.post_root.hex()
            same = (
                seq["l1_batches"] == watch["l1_batches"] == watch["batches_verified"] == tip.batch_count
                and seq["state_root"] == watch["state_root"] == root
                and seq["pending"] == 0
                and watch["pending_fraud"] is None
                and get_json(f"{self.sequencer.url}/health")["ok"]
                and get_json(f"{self.watcher.url}/health")["ok"]
            )
            return root if same else None

        return wait_until(agree, WAIT_S, interval=0.1, what="one root on every node")

    def on_l1(self) -> list[str]:
        """The hash of every transaction in a batch the Rollup holds now, in order."""
        events = self.clients.rollup.batch_appended_events(self.net.deployment.deploy_block)
        live = {e.header.index: e for e in events}  # a later append of an index replaces a reverted one
        count = self.clients.rollup.batch_count()
        return ["0x" + tx_hash(raw).hex() for i in range(count) for raw in live[i].txs]

    def balance(self) -> int:
        return int(get_json(f"{self.sequencer.url}/v1/accounts/0x{RECIPIENT.hex()}")["collateral"])

    def chain_before(self, block: int) -> Chain:
        """The chain derived from the L1 up to `block - 1`."""
        reader = Web3L1.over(self.clients.w3, self.net.deployment)
        chain = Chain(self.clients.config)
        for event in reader.events(self.net.deployment.deploy_block, block - 1):
            chain.apply_event(event)
        return chain

    def batch_of(self, chain: Chain, trader: int, amount: int, l2_time: int) -> BuiltBatch:
        """A batch with one transfer of `trader`, built on `chain`'s tip (its first nonce)."""
        tx = sign_transfer(self.traders[trader], RECIPIENT, amount, 0, self.clients.config)
        raw = encode_tx(tx)
        built = build_batch(
            chain.state,
            chain.queue,
            [PendingTx(0, tx_hash(raw), raw, tx)],
            self.clients.config,
            l2_time=l2_time,
        )
        assert built is not None and len(built.txs) == 1
        return built

    def append_call(self, sender: str, chain: Chain, built: BuiltBatch) -> dict[str, Any]:
        """The `append_batch` transaction of `built` on `chain`'s tip, from an unlocked account."""
        args = [chain.tip_root, chain.queue_end, built.queue_end, built.l2_time, built.txs, built.roots]
        data = self.clients.rollup.contract.encode_abi("append_batch", args=args)
        return {"from": sender, "to": self.clients.rollup.address, "data": data, "gas": hex(3_000_000)}


@pytest.fixture(scope="module")
def reorg_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReorgNet]:
    """anvil with the contracts, four funded traders, two more bonded sequencers (the test's own
    batches), a sequencer and a watcher, with the deposits batched."""
    workdir: Path = tmp_path_factory.mktemp("reorg")
    net = Network.start(
        workdir / "net", l1="anvil", params=DeployParams(challenge_window_seconds=600), markets=False
    )
    try:
        rpc_call(net.l1_url, "evm_setIntervalMining", [0])
        rpc_call(net.l1_url, "evm_setAutomine", [True])
        clients = Clients(net)
        traders = clients.fund(4, 1_000 * TOKEN_UNIT)
        for role in (SEQ_B, WATCHER_2):
            clients.rollup.register(
                Sender.from_key(net.accounts[role].private_key), DeployParams().min_bond_wei
            )
        sequencer = net.start_sequencer("sequencer-a", SEQ_A, batch_interval_ms=200)
        watcher = net.start_watcher("watcher", WATCHER_1)
        rn = ReorgNet(net, clients, sequencer, watcher, traders)
        wait_until(
            lambda: get_json(f"{sequencer.url}/v1/status")["next_deposit_index"] == 4, WAIT_S, what="deposits"
        )
        rn.one_root()
        yield rn
    finally:
        net.stop()


def test_reorg__sequencers_batch_taken_out__posted_again_one_root(reorg_net: ReorgNet) -> None:
    rn = reorg_net
    balance, reorgs = rn.balance(), rn.reorgs()
    h = rn.transfer(0, 10 * TOKEN_UNIT)
    index = rn.batched(h)
    rn.one_root()
    rn.reorg(rn.batch_block(index))  # the block of that batch, and any after it, replaced by empty ones
    rn.rewound(reorgs)
    assert rn.batched(h) == index
    rn.one_root()
    assert rn.on_l1().count(h) == 1 and rn.balance() == balance + 10 * TOKEN_UNIT


def test_reorg__batch_replaced_by_another_sequencers__ours_posted_after_it_one_root(
    reorg_net: ReorgNet,
) -> None:
    rn = reorg_net
    balance, reorgs = rn.balance(), rn.reorgs()
    ours = rn.transfer(1, 20 * TOKEN_UNIT)
    index = rn.batched(ours)
    rn.one_root()
    block = rn.batch_block(index)
    chain = rn.chain_before(block)
    l2_time = max(chain.tip_l2_time, int(rn.clients.w3.eth.get_block(block - 1)["timestamp"]))
    built = rn.batch_of(chain, 2, 30 * TOKEN_UNIT, l2_time)
    other = rn.net.accounts[SEQ_B].address
    rn.reorg(block, [rn.append_call(other, chain, built)])  # batch `index` is now the other's
    theirs = "0x" + tx_hash(built.txs[0]).hex()
    rn.rewound(reorgs)
    assert rn.batched(ours) == index + 1
    rn.one_root()
    on_l1 = rn.on_l1()
    assert on_l1.count(ours) == 1 and on_l1.index(theirs) < on_l1.index(ours)
    assert rn.balance() == balance + 50 * TOKEN_UNIT


def test_reorg__fraud_proof_taken_out__proven_again_one_root(reorg_net: ReorgNet) -> None:
    rn = reorg_net
    rollup, deploy_block = rn.clients.rollup, rn.net.deployment.deploy_block
    proven, proofs = len(rollup.fraud_proven_events(deploy_block)), len(rn.proofs())
    head = rn.head() + 1
    chain = rn.chain_before(head)
    l2_time = max(chain.tip_l2_time, int(rn.clients.w3.eth.get_block(head - 1)["timestamp"]))
    bad = corrupt(rn.batch_of(chain, 3, 40 * TOKEN_UNIT, l2_time), root_at=0)
    liar = Sender.from_key(rn.net.accounts[WATCHER_2].private_key)
    rollup.append_batch(
        liar,
        bad.txs,
        bad.roots,
        prev_root=chain.tip_root,
        queue_start=chain.queue_end,
        queue_end=bad.queue_end,
        l2_time=bad.l2_time,
    )
    first = wait_until(
        lambda: (f := rollup.fraud_proven_events(deploy_block))[proven:] and f[proven], WAIT_S, what="proven"
    )
    # the sequencer takes the liar's transfer over (it was public on L1) and posts it
    theirs = "0x" + tx_hash(bad.txs[0]).hex()
    assert rn.batched(theirs) == len(chain.batches)
    rn.one_root()
    reorgs = rn.reorgs()
    rn.reorg(first.meta.block_number)  # the proof, and the sequencer's batch after it, taken out
    rn.rewound(reorgs)
    wait_until(lambda: len(rn.proofs()) == proofs + 2, WAIT_S, what="the fraud proven again")
    rn.one_root()
    assert len(rollup.fraud_proven_events(deploy_block)) == proven + 1
    assert rn.on_l1().count(theirs) == 1 and rollup.sequencer_info(liar.address).slashed
    assert [p["batch"] for p in rn.proofs()[proofs:]] == [len(chain.batches)] * 2
