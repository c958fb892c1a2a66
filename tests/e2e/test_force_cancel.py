"""A resting order cancelled through the L1 Bridge on a running network (sequencer, watcher and
price feed processes): `rollup trade force-cancel` queues the signed Cancel, the sequencer takes
the order off its book, a batch consumes the forced entry, the watcher agrees, and nothing fills
the order after."""

from __future__ import annotations

import pytest

from devnet.markets import governance_payloads
from devnet.orchestrator import FIRST_TRADER, SEQ_A, WATCHER_1, Network, get_json
from devnet.procs import wait_until
from tests.e2e.helpers import TOKEN_UNIT, Clients
from tests.e2e.test_trade_cli import ETH_UNIT, trade

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_force_cancel__resting_order__off_the_book_batched_verified_and_never_filled_after(
    network: Network, clients: Clients
) -> None:
    seq = network.start_sequencer("sequencer-a", SEQ_A)
    watcher = network.start_watcher("watcher-1", WATCHER_1)
    network.start_oracle("oracle", seq, interval_ms=1_000, walk_bps=0)
    clients.fund(2, 100_000 * TOKEN_UNIT)
    maker, taker = network.accounts[FIRST_TRADER], network.accounts[FIRST_TRADER + 1]
    queued = len(governance_payloads()) + 2
    status = f"{seq.url}/v1/status"
    wait_until(lambda: get_json(status)["next_deposit_index"] == queued, 60, what="the deposits batched")

    ask = trade(seq.url, maker.private_key, "sell", "0", "3005", str(2 * ETH_UNIT), "--post-only")
    assert (ask["status"], ask["resting"]) == ("resting", 2 * ETH_UNIT)
    bought = trade(seq.url, taker.private_key, "buy", "0", "3005", str(ETH_UNIT), "--ioc")
    assert bought["status"] == "filled"
    order_url = f"{seq.url}/v1/orders/{ask['digest']}"

    l1 = ["--l1-url", network.l1_url, "--deployment", str(network.deployment_path)]
    forced = trade(seq.url, maker.private_key, "force-cancel", "--digest", ask["digest"], extra=l1)
    assert forced["digest"] == ask["digest"] and forced["queue_index"] == queued

    wait_until(lambda: get_json(order_url)["status"] == "cancelled", 60, what="the order off the book")
    assert get_json(f"{seq.url}/v1/markets/0/book")["asks"] == []
    wait_until(lambda: get_json(status)["next_deposit_index"] == queued + 1, 60, what="the entry consumed")
    batches = range(get_json(status)["l1_batches"])
    holding = [i for i in batches if forced["tx_hash"] in get_json(f"{seq.url}/v1/batches/{i}")["tx_hashes"]]
    assert len(holding) == 1
    view = get_json(order_url)
    assert (view["status"], view["filled"], view["filled_confirmed"], len(view["fills"])) == (
        "cancelled",
        ETH_UNIT,
        ETH_UNIT,
        1,
    )

    # a buy at the cancelled ask's price finds nothing to fill: it rests instead
    late = trade(seq.url, taker.private_key, "buy", "0", "3005", str(ETH_UNIT))
    assert (late["status"], late["fills"]) == ("resting", [])
    assert len(get_json(order_url)["fills"]) == 1

    # the watcher, trusting L1 alone, derived the same chain through the forced cancel
    tip = get_json(status)
    wait_until(
        lambda: get_json(f"{watcher.url}/v1/status")["batches_verified"] >= holding[0] + 1,
        60,
        what="the watcher past the batch",
    )
    wait_until(
        lambda: get_json(f"{watcher.url}/v1/status")["l1_batches"] >= tip["l1_batches"],
        60,
        what="the watcher at the sequencer's tip",
    )
    seen = get_json(f"{watcher.url}/v1/status")
    assert seen["pending_fraud"] is None and seen["proofs_sent"] == []
    assert tip["halted_on_fraud"] is None
