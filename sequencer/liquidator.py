"""`rollup liquidator`: a liquidation bot — anyone can run one.

Every interval it asks a sequencer which accounts are below their maintenance margin
(`GET /v1/risk`: the candidates the sequencer's keeper computes with the state machine's own risk
functions, with the size that would restore each account) and submits a signed `Liquidate` for
each: the bot's account takes the position over at the mark, and the liquidated account pays its
penalty into the insurance fund. The sequencer and then the state machine check every one of them;
a refused one (someone else was faster, the price moved) is only counted. The bot's account needs
collateral for the positions it takes (initial margin).

Given several members of the sequencer set (`--sequencer`, repeated or comma-separated) it moves
on to the next when one cannot serve (`sequencer.endpoints`; a liquidation sent twice is
acknowledged once). It serves `GET /health` and `GET /metrics` on `--port` and logs one structured
line per liquidation.
"""

from __future__ import annotations

import argparse
import signal
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from contracts.keccak import use_pysha3
from contracts.logs import get_logger
from sequencer.client import RequestRefused, SequencersUnavailable, TraderClient
from sequencer.endpoints import add_sequencer_argument, sequencer_urls
from sequencer.small_http import serve_health_and_metrics

log = get_logger("liquidator")


class Liquidator:
    """Liquidates what a sequencer set reports at risk, with one trader's client."""

    def __init__(self, trader: TraderClient, *, max_per_step: int = 20) -> None:
        self.trader = trader
        self.max_per_step = max_per_step
        self.stop = threading.Event()
        self.registry = CollectorRegistry()
        self.done = Counter(
            "liquidator_liquidations_total", "Liquidations acknowledged", registry=self.registry
        )
        self.refused = Counter(
            "liquidator_refused_total", "Liquidations refused", ["code"], registry=self.registry
        )
        self.steps = 0
        self.last_error: str | None = None
        """Why the last round could not ask the sequencer, or why it refused to acknowledge
        anything (a 503: the sequencer is not ready, full, or its L1 is away); None when it
        worked."""

    def step(self) -> int:
        """One round: liquidate the reported candidates; returns how many were acknowledged."""
        self.steps += 1
        try:
            candidates = self.trader.risk()
            nonce = self.trader.next_nonce() if candidates else 0
        except RequestRefused as exc:  # `SequencersUnavailable` when no member could serve
            self.last_error = str(exc)
            log.warning("risk_unreachable", error=str(exc))
            return 0
        self.last_error = None
        acknowledged = 0
        for c in candidates[: self.max_per_step]:
            account = bytes.fromhex(c["account"][2:])
            try:
                ack = self.trader.liquidate(account, int(c["market"]), int(c["size"]), nonce)
            except RequestRefused as exc:
                self.refused.labels(code=exc.code).inc()
                log.info("liquidation_refused", account=c["account"], market=c["market"], code=exc.code)
                # no member can acknowledge now (or the set is full): not a wrong or late liquidation
                if isinstance(exc, SequencersUnavailable) or exc.code == "overloaded":
                    self.last_error = f"the sequencer refused a liquidation: {exc.code}"
                continue
            nonce += 1
            acknowledged += 1
            self.done.inc()
            log.info(
                "liquidation_sent", account=c["account"], market=c["market"], size=c["size"], tx=ack.hash
            )
        return acknowledged

    def run(self, interval_s: float) -> None:
        """Step every `interval_s` until stopped."""
        while not self.stop.is_set():
            self.step()
            self.stop.wait(interval_s)

    def health(self) -> dict[str, Any]:
        """`ok` once a round reached the sequencer and it acknowledged; `reasons` says why not
        (cleared by the next round that works)."""
        reasons = []
        if self.steps == 0:
            reasons.append({"code": "no_round_yet", "message": "no round has run yet"})
        if self.last_error is not None:
            reasons.append({"code": "sequencer_unavailable", "message": self.last_error})
        return {"ok": not reasons, "reasons": reasons, "steps": self.steps, "last_error": self.last_error}

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        """Serve `/health` and `/metrics` in a background thread."""
        return serve_health_and_metrics(self.health, self.registry, host, port, "liquidator")


def main(argv: list[str] | None = None) -> None:
    """Run a liquidation bot until SIGINT/SIGTERM."""
    use_pysha3()
    parser = argparse.ArgumentParser(
        prog="rollup liquidator", description="Liquidate under-margined accounts."
    )
    add_sequencer_argument(parser)
    parser.add_argument("--private-key", required=True, help="hex key of the liquidating trader")
    parser.add_argument("--interval-ms", type=int, default=1000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900, help="serves /health and /metrics")
    args = parser.parse_args(argv)
    urls = sequencer_urls(args)
    bot = Liquidator(TraderClient.connect(urls, bytes.fromhex(args.private_key.removeprefix("0x"))))
    server = bot.serve(args.host, args.port)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: bot.stop.set())
    log.info("liquidator_started", trader=bot.trader.address, sequencers=list(urls))
    bot.run(args.interval_ms / 1000)
    server.shutdown()
    bot.trader.close()
    log.info("liquidator_stopped")


if __name__ == "__main__":
    main()
