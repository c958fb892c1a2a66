"""The node's L1 calls in child processes (`sequencer.l1proc`), against a real embedded L1."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest
from web3 import Web3

from contracts.bindings import RollupClient
from devnet.orchestrator import SEQ_A, Network
from sequencer.l1proc import L1CallFailed, L1ChildGone, L1Params, L1Processes
from sequencer.stf.l1types import L1Message


def _processes(network: Network) -> L1Processes:
    account = network.accounts[SEQ_A]
    params = L1Params(network.l1_url, network.deployment, account.private_key, 0)
    return L1Processes(params, bytes.fromhex(account.address[2:]))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_l1_processes__reads_and_sends__answered_by_children(network: Network) -> None:
    l1 = _processes(network)
    try:
        l1.ensure_bonded(10**18)
        rollup = RollupClient(Web3(Web3.HTTPProvider(network.l1_url)), network.deployment.rollup)
        assert rollup.is_bonded(network.accounts[SEQ_A].address)
        head = l1.head_block()
        assert head >= network.deployment.deploy_block
        events = l1.events(network.deployment.deploy_block, head)
        assert len([e for e in events if isinstance(e, L1Message)]) == 3  # the devnet's markets
        assert l1.head_timestamp() == rollup.w3.eth.get_block("latest")["timestamp"]
        with pytest.raises(L1CallFailed) as refused:  # not built on the tip
            l1.append_batch([b"\x01"], [b"\x02" * 32], b"\x03" * 32, 0, 0, l1.head_timestamp())
        assert refused.value.kind == "TransactionReverted"
        assert refused.value.reason == "rollup: wrong prev_root"
        assert rollup.tip().batch_count == 0
        assert l1.writer.pid != l1.reader.pid
    finally:
        l1.stop()


def test_l1_child__killed__next_call_starts_another(network: Network) -> None:
    l1 = _processes(network)
    try:
        first = l1.head_block()
        pid = l1.reader.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        try:
            again = l1.head_block()
        except L1ChildGone:  # the call that found it gone fails; the next one is answered
            again = l1.head_block()
        assert again >= first
        assert l1.reader.pid not in (None, pid)
        assert l1.reader.starts == 2
    finally:
        l1.stop()


def test_l1_child__stopped__refuses_calls_and_is_gone(network: Network) -> None:
    l1 = _processes(network)
    l1.head_timestamp()
    pid = l1.writer.pid
    assert pid is not None
    l1.stop()
    assert _gone(pid)  # stopped and reaped
    with pytest.raises(L1ChildGone):
        l1.head_timestamp()
    assert l1.writer.starts == 1


def test_l1_child__stopped_during_a_call__call_fails_at_once(network: Network) -> None:
    # an L1 that accepts connections and never answers: the child's call blocks in web3
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    silent.settimeout(30)  # accept() gives up if the child never connects
    account = network.accounts[SEQ_A]
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    l1 = L1Processes(L1Params(url, network.deployment, account.private_key, 0, timeout=60), b"\x01" * 20)
    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            outcome.append(l1.head_block())
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    try:
        connection, _ = silent.accept()  # the child is in its call
        started = time.monotonic()
        l1.stop()
        caller.join(10)
        assert not caller.is_alive() and time.monotonic() - started < 10  # not web3's 60 s timeout
        assert len(outcome) == 1 and isinstance(outcome[0], L1ChildGone)
        connection.close()
    finally:
        silent.close()
        caller.join(60)
