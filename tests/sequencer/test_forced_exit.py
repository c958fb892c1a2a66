"""A user exits through L1 alone: a Withdraw forced with `Bridge.force_tx` (never sent to a
sequencer) is batched by a real sequencer node, agreed by a watcher, and claimed after the
challenge window; a pending transaction it invalidates is dropped with its reason.

Everything runs in this process: the contracts on eth-tester (`devnet.l1_harness`), the node and
the watcher over the same `Web3L1` adapter the services use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from contracts.bindings import TransactionReverted
from contracts.l1 import Web3L1
from devnet.faulty import Fault, FaultyNode
from devnet.l1_harness import CHALLENGE_WINDOW_SECONDS, Harness
from prover.watcher import Watcher
from prover.withdrawals import build_withdrawal_claim
from sequencer.client import ForceRefused, L1ExitClient
from sequencer.node import SequencerNode
from sequencer.stf.codec import decode_tx, encode_tx, tx_hash
from sequencer.stf.constants import TX_TYPE_FORCED
from sequencer.stf.eip712 import address_of, sign_transfer, sign_withdraw
from sequencer.stf.errors import BadNonce, InsufficientBalance, InvalidAmount, InvalidRecipient
from sequencer.stf.state import get_account, get_withdrawal
from sequencer.stf.types import ForcedTx, Withdraw
from sequencer.store import Store
from sequencer.trade_cli import main as trade_main

USER_KEY = b"\x42" * 32
USER = address_of(USER_KEY)
OTHER = b"\x0b" * 20
L1_RECIPIENT = bytes.fromhex("00000000000000000000000000000000000e0e17")


@contextlib.contextmanager
def started(
    tmp_path: Path, fault: Fault | None = None
) -> Iterator[tuple[Harness, SequencerNode, Callable[[Any], Any]]]:
    """The contracts on eth-tester, a sequencer node over them (L1 account 1; lying as `fault`
    says, if given), started on its own event loop; the user holds 1,000 on L2 (deposited and
    batched)."""
    h = Harness.create()
    l1 = Web3L1.over(h.w3, h.deployment, sender=h.account(1))
    store = Store(tmp_path / "seq.sqlite")
    make = SequencerNode if fault is None else partial(FaultyNode, fault=fault)
    node = make(h.config, store, l1, l1, start_block=h.deployment.deploy_block)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(node.start())
        h.deposit(USER, 1_000)
        post(node, loop.run_until_complete)
        assert get_account(node.chain.state, USER).collateral == 1_000
        yield h, node, loop.run_until_complete
    finally:
        loop.close()
        store.close()


def post(node: SequencerNode, run: Callable[[Any], Any]) -> None:
    """Fold L1, then build and append one batch (a clock refused as ahead of L1 is retried)."""
    run(node.follower.poll())
    for _ in range(3):
        if run(node.poster.build_and_post()):
            return
    raise AssertionError(f"no batch appended: {node.loop_health.last_error}")


def exit_client(h: Harness) -> L1ExitClient:
    """The user's L1 exit, paid by L1 account 6 (anyone may queue a signed transaction)."""
    return L1ExitClient(Web3L1.over(h.w3, h.deployment, sender=h.account(6)), USER_KEY)


def test_force_withdraw__never_sent_to_the_sequencer__batched_verified_and_claimed(tmp_path: Path) -> None:
    with started(tmp_path) as (h, node, run):
        user = exit_client(h)
        assert user.next_nonce() == 0
        forced = user.force_withdraw(L1_RECIPIENT, 400)
        assert (forced.queue_index, forced.nonce) == (1, 0)
        assert node.store.get(bytes.fromhex(forced.inner_tx_hash[2:])) is None  # the sequencer never saw it

        post(node, run)

        batch = node.chain.batches[-1]
        assert node.chain.valid_count == len(node.chain.batches) == 2
        assert decode_tx(batch.txs[0]) == ForcedTx(1, forced.signed_tx)
        assert forced.tx_hash == "0x" + tx_hash(batch.txs[0]).hex()  # the batched transaction's hash
        assert forced.inner_tx_hash == "0x" + tx_hash(forced.signed_tx).hex() != forced.tx_hash
        assert isinstance(decode_tx(forced.signed_tx), Withdraw)
        assert batch.header.queue_end == 2
        assert get_account(node.chain.state, USER).collateral == 600
        assert get_withdrawal(node.chain.state, USER, 0) == (L1_RECIPIENT, 400)
        assert user.next_nonce() == 1

        # A watcher that trusts L1 alone re-derives the same chain and finds no fraud.
        l1 = Web3L1.over(h.w3, h.deployment)
        watcher = Watcher(h.config, l1, l1, start_block=h.deployment.deploy_block)
        watcher.step()
        assert watcher.chain.fraud is None and watcher.chain.valid_count == 2
        assert watcher.chain.tip_root == node.chain.tip_root == batch.header.post_root

        # Claimable only once the batch is final.
        claim = build_withdrawal_claim(watcher.chain, USER, 0)
        with pytest.raises(TransactionReverted) as err:
            h.bridge.submit_claim(h.account(7), claim)
        assert err.value.reason == "bridge: batch not final"
        h.travel_to(batch.header.timestamp + CHALLENGE_WINDOW_SECONDS)
        h.bridge.submit_claim(h.account(7), claim)
        assert h.token.balance_of(L1_RECIPIENT) == 400


def test_force_withdraw__sequencer_lies_about_it__watcher_proves_fraud_in_one_tx(tmp_path: Path) -> None:
    with started(tmp_path, Fault(tx_type=TX_TYPE_FORCED)) as (h, node, run):
        exit_client(h).force_withdraw(L1_RECIPIENT, 400)
        post(node, run)  # the forced transaction's post root is a lie
        l1 = Web3L1.over(h.w3, h.deployment, sender=h.account(3))
        watcher = Watcher(h.config, l1, l1, start_block=h.deployment.deploy_block)
        watcher.step()
        assert watcher.chain.fraud is not None
        assert (watcher.chain.fraud.batch_index, watcher.chain.fraud.tx_index) == (1, 0)
        (fraud,) = h.rollup.fraud_proven_events(h.deployment.deploy_block)
        assert (fraud.batch_index, fraud.tx_index) == (1, 0)
        assert h.rollup.sequencer_info(h.account(1).address).slashed
        assert h.rollup.batch_count() == 1  # the lying batch is reverted; the forced entry is due again
        watcher.step()
        assert watcher.chain.fraud is None and h.bridge.queue_length() == 2


def test_force_withdraw__pending_tx_with_the_same_nonce__forced_one_wins_pending_dropped(
    tmp_path: Path,
) -> None:
    with started(tmp_path) as (h, node, run):
        pending = sign_transfer(USER_KEY, OTHER, 700, 0, h.config)
        h_pending, _ = node.intake.submit(pending)  # acknowledged at nonce 0, not batched yet
        forced = exit_client(h).force_withdraw(L1_RECIPIENT, 400, nonce=0)

        # Seeing the forced entry on L1 is enough: the view is rebased with it first.
        run(node.follower.poll())
        row = node.store.get(h_pending)
        assert row is not None and row.status == "dropped"
        assert not node.mempool.pending
        view = node.account_view(USER)
        assert (view.pending_nonce, view.pending_collateral) == (1, "600")

        post(node, run)

        batch = node.chain.batches[-1]
        assert [decode_tx(raw) for raw in batch.txs] == [ForcedTx(1, forced.signed_tx)]
        assert tx_hash(encode_tx(pending)) == h_pending
        row = node.store.get(h_pending)
        assert row is not None and row.status == "dropped" and row.reason is not None
        assert row.reason.startswith("bad_nonce")
        assert not node.mempool.pending
        assert get_account(node.chain.state, USER).collateral == 600


def test_force_withdraw__same_bytes_pending_and_forced__applied_once_reason_says_forced(
    tmp_path: Path,
) -> None:
    with started(tmp_path) as (h, node, run):
        signed = sign_withdraw(USER_KEY, L1_RECIPIENT, 400, 0, h.config)
        h_pending, _ = node.intake.submit(signed)  # the user sent it, and also forces the same bytes
        forced = exit_client(h).force_bytes(encode_tx(signed))
        assert forced.inner_tx_hash == "0x" + h_pending.hex()  # the same signed bytes
        assert forced.tx_hash == "0x" + tx_hash(encode_tx(ForcedTx(1, encode_tx(signed)))).hex()

        post(node, run)

        row = node.store.get(h_pending)
        assert row is not None and row.status == "dropped" and row.reason is not None
        assert row.reason.startswith("bad_nonce") and "forced through L1 queue entry 1" in row.reason
        batch = node.chain.batches[-1]
        assert [decode_tx(raw) for raw in batch.txs] == [ForcedTx(1, encode_tx(signed))]
        assert get_account(node.chain.state, USER).collateral == 600  # once, not twice
        assert get_withdrawal(node.chain.state, USER, 0) == (L1_RECIPIENT, 400)


def test_force_withdraw__bad_input__typed_errors_nothing_queued(tmp_path: Path) -> None:
    with started(tmp_path) as (h, _node, _run):
        user = exit_client(h)
        queued = h.bridge.queue_length()
        with pytest.raises(InvalidAmount):
            user.force_withdraw(L1_RECIPIENT, 0)
        with pytest.raises(InvalidRecipient):
            user.force_withdraw(bytes(20), 10)
        with pytest.raises(InsufficientBalance):
            user.force_withdraw(L1_RECIPIENT, 1_001)
        with pytest.raises(BadNonce):
            user.force_withdraw(L1_RECIPIENT, 10, nonce=3)
        assert h.bridge.queue_length() == queued
        with pytest.raises(ForceRefused) as err:
            user.force_bytes(b"")
        assert err.value.reason == "bridge: empty tx"
        with pytest.raises(ForceRefused) as err:
            user.force_bytes(b"\x03" * 1_016)
        assert err.value.reason == "bridge: tx too long"
        assert h.bridge.queue_length() == queued


def test_trade_cli__force_withdraw__queued_with_no_sequencer_reachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with started(tmp_path) as (h, node, run):
        connected: list[tuple[str, str]] = []

        def connect(
            cls: type[L1ExitClient], url: str, deployment: str, key: bytes, *, l1_key: bytes | None = None
        ) -> L1ExitClient:
            connected.append((url, deployment))
            assert l1_key is None
            return cls(Web3L1.over(h.w3, h.deployment, sender=h.account(6)), key)

        monkeypatch.setattr(L1ExitClient, "connect", classmethod(connect))
        nowhere = ["--sequencer", "http://127.0.0.1:1", "--key", "0x" + USER_KEY.hex(), "force-withdraw"]
        l1 = ["--l1-url", "http://l1.example:8545", "--deployment", "dep.json"]
        trade_main([*nowhere, "0x" + L1_RECIPIENT.hex(), "300", *l1])
        out = json.loads(capsys.readouterr().out.splitlines()[-1])
        assert (out["queue_index"], out["nonce"], out["amount"]) == (1, 0, 300)
        assert connected == [("http://l1.example:8545", "dep.json")]

        post(node, run)
        assert get_withdrawal(node.chain.state, USER, 0) == (L1_RECIPIENT, 300)
        # It reports the hash of the transaction as batched (the ForcedTx wrapper, as the node's
        # batch view lists it) and, named apart, the hash of the signed Withdraw inside it.
        batch = node.chain.batches[-1]
        (forced,) = batch.txs
        inner = decode_tx(forced)
        assert isinstance(inner, ForcedTx) and isinstance(decode_tx(inner.tx), Withdraw)
        assert out["tx_hash"] == "0x" + tx_hash(forced).hex()
        view = node.batch_view(batch.header.index)
        assert view is not None and out["tx_hash"] in view.tx_hashes
        assert out["inner_tx_hash"] == "0x" + tx_hash(inner.tx).hex() != out["tx_hash"]

        with pytest.raises(SystemExit) as done:
            trade_main([*nowhere, "0x" + L1_RECIPIENT.hex(), "0", *l1])
        assert done.value.code == 1
        assert json.loads(capsys.readouterr().out.splitlines()[-1])["error"]["code"] == "invalid_amount"


def test_force_withdraw__no_pending_tx_names_the_user__applied_on_top_no_replan(tmp_path: Path) -> None:
    with started(tmp_path) as (h, node, run):
        other_key = b"\x43" * 32
        h.deposit(address_of(other_key), 500)
        post(node, run)
        transfer = sign_transfer(other_key, OTHER, 200, 0, h.config)
        h_pending, _ = node.intake.submit(transfer)  # acknowledged, another account's
        forced = exit_client(h).force_withdraw(L1_RECIPIENT, 400, nonce=0)
        rebases: list[int] = []
        rebase = node.follower.rebase
        node.follower.rebase = lambda foreign: rebases.append(len(foreign)) or rebase(foreign)  # type: ignore[method-assign]

        run(node.follower.poll())

        assert rebases == []  # nothing pending names the user: the forced one goes on top
        view = node.account_view(USER)
        assert (view.pending_nonce, view.pending_collateral) == (1, "600")
        assert [p.hash for p in node.mempool.pending] == [h_pending]
        post(node, run)
        batch = node.chain.batches[-1]
        assert [decode_tx(raw) for raw in batch.txs] == [ForcedTx(2, forced.signed_tx), transfer]
        row = node.store.get(h_pending)
        assert row is not None and row.status == "batched"
        assert get_account(node.chain.state, USER).collateral == 600
        assert get_account(node.chain.state, address_of(other_key)).collateral == 300
        assert rebases == []
