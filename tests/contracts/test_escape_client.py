"""The escape hatch from a trader's side: `EscapeClient` and `rollup trade freeze | escape | refund`
over the contracts on eth-tester, deriving the frozen state from L1 events and batch calldata
alone (the same `Web3L1` adapter the services use; no sequencer exists here)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from contracts_harness import user_address, user_key
from test_escape import (
    ESCAPE_DELAY_SECONDS,
    EXIT_WINDOW_SECONDS,
    L1_RECIPIENT,
    LATE_DEPOSITOR,
    WITHDRAWN,
    A,
    B,
    Scene,
    build_scene,
)

from contracts.bindings import Sender
from contracts.l1 import Web3L1
from sequencer.escape_client import EscapeClient, EscapeRefused
from sequencer.stf.escape import exit_equity, exit_proof
from sequencer.trade_cli import main as trade_main


@pytest.fixture
def s() -> Iterator[Scene]:
    yield build_scene()


def client(s: Scene, i: int) -> EscapeClient:
    """Trader `i`'s escape over the scene's L1; freezes, payouts and refunds paid by account 9."""
    h = s.h
    address = Sender.from_key(user_key(i)).address
    h.w3.eth.send_transaction({"from": h.deployer.address, "to": address, "value": 10**18})  # type: ignore[typeddict-item]
    return EscapeClient(Web3L1.over(h.w3, h.deployment), user_key(i), l1_sender=h.account(9))


def _refused(call: object) -> str:
    with pytest.raises(EscapeRefused) as err:
        call()  # type: ignore[operator]
    return err.value.reason


def test_escape_client__freeze_claim_register_refund_pay__from_l1_data_alone(s: Scene) -> None:
    h = s.h
    a = client(s, A)
    assert _refused(a.proof) == "the Rollup is not frozen"
    assert _refused(a.freeze) == "rollup: no overdue queue entry"  # the deposit is fresh
    h.travel_to(s.last_append + ESCAPE_DELAY_SECONDS)
    frozen = a.freeze()
    assert a.frozen() == frozen and frozen.post_root == h.state.tree.root

    chain = a.derive()
    proof = a.proof(chain)
    assert proof == exit_proof(h.state, user_address(A))  # the derived state is the honest one
    (withdrawal,) = a.claim_withdrawals(chain)
    assert (withdrawal.nonce, withdrawal.recipient, withdrawal.amount) == (0, L1_RECIPIENT, WITHDRAWN)
    assert h.token.balance_of("0x" + L1_RECIPIENT.hex()) == WITHDRAWN and a.claim_withdrawals(chain) == []
    registered = a.register(proof=proof)
    assert (registered.account, registered.equity) == (user_address(A), exit_equity(h.state, user_address(A)))
    assert _refused(a.register) == "bridge: already exited"
    assert _refused(a.pay) == "bridge: exit window open"

    (refund,) = a.refund_deposits(b"")  # anyone's: the late depositor's
    assert refund.depositor == bytes.fromhex(h.account(LATE_DEPOSITOR).address[2:])
    assert a.unconsumed_deposits(b"") == []

    h.travel_to(frozen.timestamp + EXIT_WINDOW_SECONDS)
    paid = a.pay()
    assert paid.amount == registered.claim and paid.recipient == user_address(A)
    assert _refused(a.pay) == "bridge: exit already paid"


def test_trade_cli__freeze_escape_refund__one_json_line_each(
    s: Scene, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    h = s.h
    clients = {i: client(s, i) for i in (A, B)}
    connected: list[tuple[str, str]] = []

    def connect(
        cls: type[EscapeClient], url: str, deployment: str, key: bytes, *, l1_key: bytes | None = None
    ) -> EscapeClient:
        connected.append((url, deployment))
        return next(c for c in clients.values() if c.key == key)

    monkeypatch.setattr(EscapeClient, "connect", classmethod(connect))
    l1 = ["--l1-url", "http://l1.example:8545", "--deployment", "dep.json"]

    def cli(i: int, *args: str, ok: bool = True) -> dict[str, object]:
        argv = ["--sequencer", "http://127.0.0.1:1", "--key", "0x" + user_key(i).hex(), *args, *l1]
        if ok:
            trade_main(argv)
        else:
            with pytest.raises(SystemExit) as done:
                trade_main(argv)
            assert done.value.code == 1
        out: dict[str, object] = json.loads(capsys.readouterr().out.splitlines()[-1])
        return out

    assert cli(B, "freeze", ok=False)["error"] == {
        "code": "escape_refused",
        "message": "rollup: no overdue queue entry",
    }
    h.travel_to(s.last_append + ESCAPE_DELAY_SECONDS)
    frozen = cli(B, "freeze")
    assert (
        frozen["post_root"] == "0x" + h.state.tree.root.hex() and h.rollup.frozen_at() == frozen["frozen_at"]
    )
    registered = cli(A, "escape")  # A's withdrawal is claimed first
    assert registered["registered"] == {
        "equity": exit_equity(h.state, user_address(A)),
        "claim": exit_equity(h.state, user_address(A)),
        "l1_tx": registered["registered"]["l1_tx"],  # type: ignore[index]
    }
    assert registered["withdrawals_claimed"] == [
        {"nonce": 0, "amount": WITHDRAWN, "recipient": "0x" + L1_RECIPIENT.hex()}
    ]
    assert cli(A, "escape", ok=False)["error"] == {
        "code": "escape_refused",
        "message": "bridge: exit window open",
    }
    assert cli(B, "refund")["refunds"] == []  # B deposited nothing that waits
    h.travel_to(int(frozen["frozen_at"]) + EXIT_WINDOW_SECONDS)  # type: ignore[call-overload]
    paid = cli(A, "escape")
    assert paid["paid"]["amount"] == exit_equity(h.state, user_address(A))  # type: ignore[index]
    assert connected and all(c == ("http://l1.example:8545", "dep.json") for c in connected)
