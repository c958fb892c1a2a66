"""`rollup trade` against a real sequencer with the devnet's markets and a live price feed:
deposit from L1, quote (through a list of sequencers whose first is down), trade, read the account
and the book, cancel, and a typed refusal."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import orjson
import pytest

from devnet.markets import governance_payloads
from devnet.orchestrator import FIRST_TRADER, SEQ_A, Network, get_json
from devnet.procs import REPO_ROOT, wait_until
from tests.e2e.helpers import TOKEN_UNIT, Clients

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ETH_UNIT = 10**6


def trade(url: str, key: str, *args: str, ok: bool = True, extra: list[str] | None = None) -> Any:
    """Run `rollup trade` and return its JSON; `ok` is whether it must exit 0."""
    argv = [
        sys.executable,
        "-m",
        "devnet.cli",
        "trade",
        "--sequencer",
        url,
        "--key",
        key,
        *args,
        *(extra or []),
    ]
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, timeout=60, check=False)
    assert (done.returncode == 0) == ok, done.stderr.decode()[-2000:]
    return orjson.loads(done.stdout.splitlines()[-1])


def test_trade_cli__deposit_quote_trade_cancel_and_refusal(network: Network) -> None:
    seq = network.start_sequencer("sequencer-a", SEQ_A)
    network.start_oracle("oracle", seq, interval_ms=1_000, walk_bps=0)
    maker, taker = network.accounts[FIRST_TRADER], network.accounts[FIRST_TRADER + 1]
    l1 = ["--l1-url", network.l1_url, "--deployment", str(network.deployment_path)]
    clients = Clients(network)
    for account in (maker, taker):
        clients.token.mint(clients.deployer, account.address, 100_000 * TOKEN_UNIT)
        deposit = trade(seq.url, account.private_key, "deposit", str(100_000 * TOKEN_UNIT), extra=l1)
        assert deposit["amount"] == 100_000 * TOKEN_UNIT
    wait_until(
        lambda: get_json(f"{seq.url}/v1/status")["next_deposit_index"] == len(governance_payloads()) + 2,
        60,
        what="the deposits batched",
    )
    markets = trade(f"http://127.0.0.1:1,{seq.url}", maker.private_key, "markets")  # the first is down
    assert [m["id"] for m in markets] == [0, 1] and markets[0]["mark_price"] == 3_000
    answer = httpx.get(f"{seq.url}/v1/markets")
    assert answer.status_code == 200 and "date" in answer.headers  # RFC 9110: 2xx carry a Date
    assert "server" not in answer.headers  # no banner

    ask = trade(seq.url, maker.private_key, "sell", "0", "3005", str(2 * ETH_UNIT), "--post-only")
    assert (ask["status"], ask["resting"]) == ("resting", 2 * ETH_UNIT)
    book = trade(seq.url, maker.private_key, "book", "0")
    assert book["asks"][0] == {"price": 3_005, "size": 2 * ETH_UNIT}

    bought = trade(seq.url, taker.private_key, "market-buy", "0", str(ETH_UNIT), "--slippage-bps", "50")
    assert bought["status"] == "filled" and bought["fills"][0]["price"] == 3_005
    account = trade(seq.url, taker.private_key, "account")
    (position,) = account["positions"]
    assert (position["market"], position["size"]) == (0, ETH_UNIT)
    assert int(account["equity"]) > 0 and account["margin_ratio_bps"] > 10_000
    assert len(trade(seq.url, taker.private_key, "fills")) == 1

    cancelled = trade(seq.url, maker.private_key, "cancel", ask["digest"])
    assert cancelled["was_resting"] and cancelled["removed"] == ETH_UNIT
    refused = trade(seq.url, taker.private_key, "buy", "0", "3000", "1500", ok=False)  # off the lot
    assert refused["error"]["code"] == "size_off_lot" and refused["error"]["status"] == 400


def test_trade_cli__force_withdraw_through_l1__the_running_sequencer_batches_it(network: Network) -> None:
    seq = network.start_sequencer("sequencer-a", SEQ_A)
    user = network.accounts[FIRST_TRADER + 2]
    recipient = network.accounts[FIRST_TRADER + 3].address
    l1 = ["--l1-url", network.l1_url, "--deployment", str(network.deployment_path)]
    clients = Clients(network)
    clients.token.mint(clients.deployer, user.address, 1_000 * TOKEN_UNIT)
    trade(seq.url, user.private_key, "deposit", str(1_000 * TOKEN_UNIT), extra=l1)
    queued = len(governance_payloads()) + 1
    status = f"{seq.url}/v1/status"
    wait_until(lambda: get_json(status)["next_deposit_index"] == queued, 60, what="the deposit batched")

    # no sequencer is asked anything: the nonce comes from L1 data, the Withdraw goes to the Bridge
    nowhere = "http://127.0.0.1:1"
    forced = trade(nowhere, user.private_key, "force-withdraw", recipient, str(400 * TOKEN_UNIT), extra=l1)
    assert (forced["queue_index"], forced["nonce"]) == (queued, 0)
    wait_until(lambda: get_json(status)["next_deposit_index"] == queued + 1, 60, what="forced one batched")
    account = get_json(f"{seq.url}/v1/accounts/{user.address}")
    assert (int(account["collateral"]), account["nonce"]) == (600 * TOKEN_UNIT, 1)

    # the same nonce again: refused before it costs L1 gas, with the state machine's typed error
    args = ["force-withdraw", recipient, str(400 * TOKEN_UNIT), "--nonce", "0"]
    replay = trade(nowhere, user.private_key, *args, ok=False, extra=l1)
    assert replay["error"]["code"] == "bad_nonce"
