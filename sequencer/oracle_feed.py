"""`rollup oracle`: an oracle committee's price feed.

Each committee member signs its own `Price(market, mark, index, timestamp)` (EIP-712, the rollup's
domain); an `OracleUpdate` carries at least the committee's threshold of them, and the state
machine takes the lower medians (docs/protocol.md section 3, "Oracle and funding"). This service
holds the keys of one or more members, reads prices from a source, and submits one update per
market per interval to a sequencer (`POST /v1/transactions`); given several members of the
sequencer set (`--sequencer`, repeated or comma-separated) it moves on to the next when one cannot
serve (`sequencer.endpoints`; an update sent twice is acknowledged once).

Sources: `walk` (a seeded random walk: the devnet's markets, reproducible) and `file` (JSON lines
`{"market": 0, "mark": 3000, "index": 2999}` appended by any other program: a real feed plugs in
there). It serves `GET /health` (200 once an update was acknowledged and the last round had no
refusal; 503 with the `reasons` otherwise) and `GET /metrics` (updates sent, refused by code, last
mark) on `--port`, and logs one structured line per update.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from contracts.keccak import use_pysha3
from contracts.logs import get_logger
from sequencer.endpoints import (
    Endpoints,
    SequencersUnavailable,
    add_sequencer_argument,
    refusal_of,
    sequencer_urls,
)
from sequencer.small_http import serve_health_and_metrics
from sequencer.stf.codec import encode_tx
from sequencer.stf.eip712 import address_of, sign_price
from sequencer.stf.types import ChainConfig, OracleUpdate, PriceEntry

log = get_logger("oracle")


class PriceSource(Protocol):
    """Where prices come from."""

    def quote(self, market: int, now: int) -> tuple[int, int] | None:
        """`(mark, index)` of `market` at unix second `now`, None if there is no price."""
        ...


class RandomWalk:
    """A reproducible random walk per market: the mark moves up to `step_bps` per quote and the
    index follows it within `basis_bps` (so funding has a premium to pay)."""

    def __init__(
        self, starts: dict[int, int], *, step_bps: int = 20, basis_bps: int = 5, seed: int = 1
    ) -> None:
        self.marks = dict(starts)
        self.step_bps = step_bps
        self.basis_bps = basis_bps
        self.rng = random.Random(seed)

    def quote(self, market: int, now: int) -> tuple[int, int] | None:
        """Step the walk of `market` once and quote it."""
        mark = self.marks.get(market)
        if mark is None:
            return None
        mark = max(1, mark + mark * self.rng.randint(-self.step_bps, self.step_bps) // 10_000)
        self.marks[market] = mark
        index = max(1, mark + mark * self.rng.randint(-self.basis_bps, self.basis_bps) // 10_000)
        return mark, index


class FileSource:
    """The last line per market of a JSON-lines file (`{"market", "mark", "index"}`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def quote(self, market: int, now: int) -> tuple[int, int] | None:
        """The newest price of `market` in the file."""
        latest = None
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            try:
                item = json.loads(line)
                if int(item["market"]) == market:
                    latest = int(item["mark"]), int(item["index"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn or malformed line: the previous price stands
        return latest


@dataclass(frozen=True)
class Committee:
    """The member keys this feed signs with."""

    keys: tuple[bytes, ...]
    config: ChainConfig

    @property
    def addresses(self) -> list[bytes]:
        """The members' addresses (what the Oracle leaf must list)."""
        return [address_of(k) for k in self.keys]

    def update(self, market: int, mark: int, index: int, timestamp: int) -> OracleUpdate:
        """An update in which every member held here signs the same price."""
        return OracleUpdate(
            market,
            tuple(
                PriceEntry(mark, index, timestamp, sign_price(k, market, mark, index, timestamp, self.config))
                for k in self.keys
            ),
        )


class OracleFeed:
    """Submits one update per market per interval until stopped."""

    def __init__(
        self,
        sequencer_url: str | Sequence[str],
        committee: Committee,
        source: PriceSource,
        markets: Sequence[int],
        *,
        interval_s: float = 2.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.endpoints = Endpoints(sequencer_url)
        self.committee = committee
        self.source = source
        self.markets = list(markets)
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.registry = registry or CollectorRegistry()
        self.sent = Counter(
            "oracle_updates_sent_total", "Updates acknowledged", ["market"], registry=self.registry
        )
        self.refused = Counter(
            "oracle_updates_refused_total", "Updates refused", ["code"], registry=self.registry
        )
        self.last_mark = Gauge("oracle_last_mark", "Last mark sent", ["market"], registry=self.registry)
        self.last_timestamp = 0
        self.acknowledged = 0
        """Updates the sequencer acknowledged so far."""
        self.last_refusals: list[str] = []
        """Error codes of the last round's refused updates."""

    def step(self, now: int | None = None) -> list[str]:
        """Submit one update per market, its prices timed at the wall clock `now`, or at the
        sequencer's batch clock when that is behind (a batch refuses a price time after its own,
        and the batch clock follows an L1 whose clock runs behind ours); nothing when that time
        is not after the last update's (each must be newer). Returns the error codes of the
        refused updates."""
        now = int(time.time()) if now is None else now
        now = min(now, self._batch_clock(now))
        if now <= self.last_timestamp:
            log.info("oracle_round_skipped", timestamp=now, last=self.last_timestamp)
            self.last_refusals = []
            return []
        self.last_timestamp = now
        refused = []
        for market in self.markets:
            quote = self.source.quote(market, now)
            if quote is None:
                continue
            mark, index = quote
            raw = encode_tx(self.committee.update(market, mark, index, now))
            try:
                response = self.endpoints.post("/v1/transactions", json={"raw": "0x" + raw.hex()})
            except SequencersUnavailable as exc:  # `unreachable`, `l1_unavailable`, ... on every URL
                log.warning("oracle_submit_failed", market=market, code=exc.code, error=str(exc))
                self.refused.labels(code=exc.code).inc()
                refused.append(exc.code)
                continue
            if response.status_code == 200:
                self.acknowledged += 1
                self.sent.labels(market=str(market)).inc()
                self.last_mark.labels(market=str(market)).set(mark)
                log.info("oracle_update_sent", market=market, mark=mark, index=index, timestamp=now)
            else:
                code = refusal_of(response).code
                self.refused.labels(code=code).inc()
                refused.append(code)
                log.warning("oracle_update_refused", market=market, code=code, status=response.status_code)
        self.last_refusals = refused
        return refused

    def _batch_clock(self, wall: int) -> int:
        """The sequencer's batch clock (`l2_time` of `GET /v1/status`); `wall` when it does not
        say (the update that follows meets the same failure and reports it)."""
        try:
            response = self.endpoints.get("/v1/status")
            return int(response.json()["l2_time"]) if response.status_code == 200 else wall
        except (SequencersUnavailable, ValueError, KeyError, TypeError):
            return wall

    def health(self) -> dict[str, object]:
        """`ok` once an update was acknowledged and the last round had no refusal; `reasons` says
        why not (the sequencer's refusal codes, e.g. `l1_unavailable` while its L1 is away, or
        `unreachable`); the next round without refusal clears them."""
        reasons = [
            {"code": code, "message": "the last round's update was refused"} for code in self.last_refusals
        ]
        if self.acknowledged == 0:
            reasons.insert(0, {"code": "no_update_yet", "message": "no update acknowledged yet"})
        return {
            "ok": not reasons,
            "reasons": reasons,
            "acknowledged": self.acknowledged,
            "last_refusals": self.last_refusals,
        }

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        """Serve `/health` and `/metrics` in a background thread."""
        return serve_health_and_metrics(self.health, self.registry, host, port, "oracle")

    def run(self) -> None:
        """Step every `interval_s` until `stop` is set."""
        while not self.stop.is_set():
            self.step()
            self.stop.wait(self.interval_s)


def _market_start(text: str) -> tuple[int, int]:
    market, _, price = text.partition("=")
    return int(market), int(price)


def main(argv: list[str] | None = None) -> None:
    """Run a price feed until SIGINT/SIGTERM."""
    use_pysha3()
    parser = argparse.ArgumentParser(prog="rollup oracle", description="Sign and submit oracle prices.")
    add_sequencer_argument(parser)
    parser.add_argument("--deployment", default="var/deployment.json", help="gives the chain id and Rollup")
    parser.add_argument("--member-key", action="append", required=True, help="hex key of a member (repeat)")
    parser.add_argument("--market", action="append", default=[], type=_market_start, help="ID=START_PRICE")
    parser.add_argument("--source", default="walk", help="walk, or file:PATH (JSON lines)")
    parser.add_argument("--interval-ms", type=int, default=2000)
    parser.add_argument("--walk-bps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800, help="serves /health and /metrics")
    args = parser.parse_args(argv)

    from contracts.l1 import load_deployment

    deployment = load_deployment(args.deployment)
    config = ChainConfig(deployment.chain_id, bytes.fromhex(deployment.rollup[2:]))
    committee = Committee(tuple(bytes.fromhex(k.removeprefix("0x")) for k in args.member_key), config)
    starts = dict(args.market)
    source: PriceSource = (
        FileSource(Path(args.source.removeprefix("file:")))
        if args.source.startswith("file:")
        else RandomWalk(starts, step_bps=args.walk_bps, seed=args.seed)
    )
    feed = OracleFeed(
        sequencer_urls(args), committee, source, sorted(starts), interval_s=args.interval_ms / 1000
    )
    server = feed.serve(args.host, args.port)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: feed.stop.set())
    log.info("oracle_started", members=[a.hex() for a in committee.addresses], markets=sorted(starts))
    feed.run()
    server.shutdown()
    feed.endpoints.close()
    log.info("oracle_stopped")


if __name__ == "__main__":
    main()
