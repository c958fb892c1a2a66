"""Sequencer configuration (environment variables prefixed `ROLLUP_SEQ_`, or CLI flags), checked
whole when the process starts: a missing or malformed setting stops it there with one line that
names the setting (`load_settings`), instead of failing later in whatever first uses it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, FilePath, StringConstraints, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.health import L1_LAG_LIMIT_BLOCKS, L1_SILENCE_LIMIT_S, SEND_STALL_LIMIT_S
from contracts.l1 import SERVICE_TIMEOUT_S
from sequencer.exchange import MAX_OPEN_ORDERS

ENV_PREFIX = "ROLLUP_SEQ_"

MAX_BODY_BYTES = 65_536
"""Default of `max_body_bytes`: the largest request body the API accepts (batches excepted,
`sequencer.api.body`)."""
MIN_BODY_BYTES = 4096
"""Least `max_body_bytes`: the largest single request (an encoded transaction of `MAX_TX_BYTES`,
2,061 bytes as compact JSON) fits."""


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+\S*", value):
        raise ValueError("must be an http:// or https:// URL")
    return value


def _private_key(value: str) -> str:
    if not re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", value):
        raise ValueError("must be 32 bytes of hex (64 hex digits, 0x optional)")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
PrivateKey = Annotated[str, AfterValidator(_private_key)]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class SequencerSettings(BaseSettings):
    """Everything a sequencer process needs to run against any L1."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, validate_default=True)

    l1_url: HttpUrl = "http://127.0.0.1:8545"
    """JSON-RPC endpoint of the L1 (http or https)."""
    deployment: FilePath = Path("var/deployment.json")
    """Path of the deployment file (contract addresses, chain id, deploy block); it must exist."""
    private_key: PrivateKey = Field(repr=False)
    """Hex private key of the sequencer's bonded L1 account (signs batch postings locally); no
    default: a sequencer cannot run without one."""
    db_path: NonEmpty = "var/sequencer.sqlite"
    """The durable transaction log."""
    host: NonEmpty = "127.0.0.1"
    port: int = Field(default=8600, ge=0, le=65_535)
    batch_max_txs: int = Field(default=256, ge=1, le=256)
    """Size trigger: post when this many transactions are pending."""
    batch_interval_ms: int = Field(default=500, ge=10)
    """Time trigger: post pending transactions at least this often."""
    l1_confirmations: int = Field(default=0, ge=0)
    """Read only L1 blocks with this many blocks on top (0 on a devnet; more on a live chain)."""
    l1_poll_ms: int = Field(default=250, ge=10)
    """How often the L1 is polled for new events."""
    l1_timeout_s: float = Field(default=SERVICE_TIMEOUT_S, gt=0)
    """Each JSON-RPC request to the L1 gives up after this long (the call is then retried)."""
    l1_silence_limit_s: float = Field(default=L1_SILENCE_LIMIT_S, gt=0)
    """/health answers 503 `l1_unreachable`, and admission refuses `l1_unavailable`, once the L1
    has been asked this long without answering a read."""
    l1_lag_limit_blocks: int = Field(default=L1_LAG_LIMIT_BLOCKS, ge=0)
    """/health answers 503 `behind_l1` while more L1 blocks than this wait to be read."""
    post_stall_limit_s: float = Field(default=SEND_STALL_LIMIT_S, gt=0)
    """/health answers 503 `posting_stalled`, and admission refuses `l1_unavailable`, once work has
    waited this long with no batch appended."""
    max_pending: int = Field(default=100_000, ge=1)
    """Mempool capacity; beyond it requests get 503 overloaded."""
    max_open_orders: int = Field(default=MAX_OPEN_ORDERS, ge=1)
    """Most resting orders kept for one account: a limit order beyond it is refused
    `too_many_open_orders` (reduce-only orders always rest)."""
    max_body_bytes: int = Field(default=MAX_BODY_BYTES, ge=MIN_BODY_BYTES)
    """Largest request body accepted (413 `too_large` beyond), on every path of the API but the
    two batch endpoints (`sequencer.api.body.BATCH_BODY_BYTES`)."""
    client_bytes_per_s: int = Field(default=4_000_000, ge=1024)
    """Each client's (connection's) share: request bodies per second on average
    (`sequencer.fairness`); beyond it a write is refused with 429 `rate_limited`."""
    client_burst_bytes: int = Field(default=4_000_000, ge=1024)
    """The most a client may send at once above its average rate."""
    account_orders_per_s: int = Field(default=2_000, ge=1)
    """Each signing account's share: orders placed per second on average, whatever connections
    they come on; beyond it its orders are refused with 429 `rate_limited` until it is back."""
    account_orders_burst: int = Field(default=10_000, ge=1)
    """The most orders an account may place at once above its average rate."""
    bad_signature_penalty_s: float = Field(default=1.0, gt=0)
    """A client that sent a bad signature is refused this long (doubled per further offence, up
    to a minute) and its connection closed."""
    bond_wei: int = Field(default=10**18, ge=0)
    """Bond posted at start if the account is not yet bonded."""
    signature_worker: bool = True
    """Compute order digests and recover signers in a worker process, beside the event loop (false:
    on the loop)."""
    l1_processes: bool = True
    """Make the L1 calls (web3) in two child processes, beside the event loop (`sequencer.l1proc`;
    false: in threads of the node's process)."""
    gc_full_collection_s: float = Field(default=3600.0, ge=0)
    """Every this many seconds, one garbage collection of the whole heap, frozen part included
    (`sequencer.gcpause`: frees reference cycles that freezing kept, in one pause as long as a walk
    of the whole heap; 0: never)."""
    loop_monitor: bool = True
    """Measure the event loop's lag and log where it stalls (`sequencer.stall`)."""
    fsync: bool = False
    """Also survive a machine crash (fsync per commit); a process crash is covered either way."""
    nats_url: str = ""
    """The sequencer set's NATS JetStream cluster (comma-separated server URLs): this sequencer
    is then a member of the set, whose log is the truth (its own durable log is rebuilt from it
    at every start); empty: a sequencer on its own with its local log."""
    advertise_url: str = ""
    """The URL other members and clients reach this member's API at (its name in the set's
    lease); default http://HOST:PORT."""
    lease_ttl_s: float = Field(default=1.5, gt=0.2, le=60)
    """A set's leader holds the lease this long past its last renewal (renewed every fifth of it,
    and given up a fifth before its end): the longest a dead leader keeps the set from
    acknowledging, and the longest a leader's loop may stall before it is deposed."""


class SettingsError(ValueError):
    """Settings that do not validate; the message is one line naming each bad setting."""


def load_settings(overrides: dict[str, Any], flags: dict[str, str] | None = None) -> SequencerSettings:
    """The settings from the environment, overridden by `overrides` (the flags given), validated;
    `flags` names the flag of a setting (setting -> `--flag`) for the error message."""
    try:
        return SequencerSettings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe(exc, flags or {})) from None


def describe(exc: ValidationError, flags: dict[str, str]) -> str:
    """One line naming each setting that failed and why (`port (--port or ROLLUP_SEQ_PORT): ...`)."""
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "settings"
        where = ENV_PREFIX + name.upper()
        if name in flags:
            where = f"{flags[name]} or {where}"
        if error["type"] == "missing":
            reason = "required"
        elif error["type"] == "path_not_file":
            reason = f"no file at {error['input']}"
        elif error["type"] == "value_error":
            reason = str(error["ctx"]["error"])
        else:
            reason = error["msg"]
        problems.append(f"{name} ({where}): {reason}")
    return "invalid settings: " + "; ".join(problems)
