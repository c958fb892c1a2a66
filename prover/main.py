"""`rollup watcher`: derive the chain from L1 and prove fraud; serves /health, /metrics, /v1/status."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from contracts.health import L1_LAG_LIMIT_BLOCKS, L1_SILENCE_LIMIT_S, SEND_STALL_LIMIT_S, HealthLimits
from contracts.http_api import ERROR_RESPONSES, error_json, exact_openapi, install_error_handlers
from contracts.keccak import use_pysha3
from contracts.l1 import SERVICE_TIMEOUT_S, Web3L1, load_deployment
from contracts.logs import get_logger
from prover.watcher import Watcher

log = get_logger("watcher")


class WatcherHealth(BaseModel):
    """`/health`: 200 with `ok` true, 503 with `ok` false and why."""

    ok: bool
    last_error: str | None
    """The last error of the derivation loop (retried)."""
    critical: str | None
    """What stopped verification, and where."""


def create_watcher_app(watcher: Watcher) -> FastAPI:
    """The watcher's small HTTP surface; every refusal (an unknown path, a method a path does
    not take, a fault) in the one error body (`contracts.http_api`)."""
    app = FastAPI(title="DerivRollup watcher", version="1", responses=ERROR_RESPONSES)
    install_error_handlers(app, error_json)
    exact_openapi(app)

    @app.get(
        "/health",
        response_model=WatcherHealth,
        responses={503: {"model": WatcherHealth, "description": "not healthy"}},
    )
    async def health() -> JSONResponse:
        """200 while the watcher is healthy; 503 with the `reasons` otherwise (`Watcher.health`)."""
        facts = watcher.health()
        return JSONResponse(facts, status_code=200 if facts["ok"] else 503)

    @app.get("/v1/status")
    async def status() -> JSONResponse:
        """Derived chain, pending fraud, proofs sent."""
        return JSONResponse(watcher.status())

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(watcher.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _positive(text: str) -> float:
    """A flag's value as a number of seconds above zero."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def _blocks(text: str) -> int:
    """A flag's value as a number of blocks, 0 or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def main(argv: list[str] | None = None) -> None:
    """Run a watcher until SIGINT/SIGTERM."""
    use_pysha3()
    parser = argparse.ArgumentParser(prog="rollup watcher", description="Run a watcher / challenger.")
    parser.add_argument("--l1-url", default="http://127.0.0.1:8545")
    parser.add_argument("--deployment", default="var/deployment.json")
    parser.add_argument("--private-key", default="", help="hex key of the L1 account that sends proofs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--poll-ms", type=int, default=250)
    parser.add_argument(
        "--l1-confirmations", type=_blocks, default=0, help="read only L1 blocks this deep (default 0)"
    )
    parser.add_argument("--no-challenge", action="store_true", help="verify only, never send proofs")
    parser.add_argument(
        "--l1-timeout-s",
        type=_positive,
        default=SERVICE_TIMEOUT_S,
        help="each L1 request gives up after this",
    )
    parser.add_argument(
        "--l1-silence-limit-s",
        type=_positive,
        default=L1_SILENCE_LIMIT_S,
        help="/health 503 l1_unreachable once the L1 has been asked this long without answering",
    )
    parser.add_argument(
        "--l1-lag-limit-blocks",
        type=_blocks,
        default=L1_LAG_LIMIT_BLOCKS,
        help="/health 503 behind_l1 while more L1 blocks than this wait to be read",
    )
    parser.add_argument(
        "--proof-stall-limit-s",
        type=_positive,
        default=SEND_STALL_LIMIT_S,
        help="/health 503 proof_stalled once a fraud proof has failed for this long",
    )
    args = parser.parse_args(argv)

    deployment = load_deployment(args.deployment)
    l1 = Web3L1(
        args.l1_url,
        deployment,
        private_key=args.private_key,
        timeout=args.l1_timeout_s,
        confirmations=args.l1_confirmations,
    )
    watcher = Watcher(
        l1.chain_config(),
        l1,
        l1,
        start_block=deployment.deploy_block,
        poll_seconds=args.poll_ms / 1000,
        challenge=not args.no_challenge,
        limits=HealthLimits(args.l1_silence_limit_s, args.l1_lag_limit_blocks, args.proof_stall_limit_s),
        confirmations=args.l1_confirmations,
    )
    watcher.chain.challenge_window_seconds = l1.challenge_window_seconds()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(watcher.run())
        log.info("watcher_listening", url=f"http://{args.host}:{args.port}", challenger=l1.address)
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    app = create_watcher_app(watcher)
    app.router.lifespan_context = lifespan
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=args.host, port=args.port, log_level="warning", access_log=False, loop="uvloop"
        )
    )
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    server.run()


if __name__ == "__main__":
    main()
