"""Sequencer configuration (environment variables prefixed `ROLLUP_SEQ_`, or CLI flags)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SequencerSettings(BaseSettings):
    """Everything a sequencer process needs to run against any L1."""

    model_config = SettingsConfigDict(env_prefix="ROLLUP_SEQ_")

    l1_url: str = "http://127.0.0.1:8545"
    """JSON-RPC endpoint of the L1."""
    deployment: str = "var/deployment.json"
    """Path of the deployment file (contract addresses, chain id, deploy block)."""
    private_key: str = ""
    """Hex private key of the sequencer's bonded L1 account (signs batch postings locally)."""
    db_path: str = "var/sequencer.sqlite"
    """The durable transaction log."""
    host: str = "127.0.0.1"
    port: int = 8600
    batch_max_txs: int = Field(default=256, ge=1, le=256)
    """Size trigger: post when this many transactions are pending."""
    batch_interval_ms: int = Field(default=500, ge=10)
    """Time trigger: post pending transactions at least this often."""
    l1_confirmations: int = Field(default=0, ge=0)
    """Read only L1 blocks with this many blocks on top (0 on a devnet; more on a live chain)."""
    l1_poll_ms: int = Field(default=250, ge=10)
    """How often the L1 is polled for new events."""
    max_pending: int = Field(default=100_000, ge=1)
    """Mempool capacity; beyond it requests get 503 overloaded."""
    max_body_bytes: int = Field(default=65_536, ge=1024)
    """Largest request body accepted (413 beyond)."""
    bond_wei: int = 10**18
    """Bond posted at start if the account is not yet bonded."""
    signature_worker: bool = True
    """Compute order digests and recover signers in a worker process, beside the event loop (false:
    on the loop)."""
    l1_processes: bool = True
    """Make the L1 calls (web3) in two child processes, beside the event loop (`sequencer.l1proc`;
    false: in threads of the node's process)."""
    gc_full_collection_s: float = Field(default=3600.0, ge=0)
    """Every this many seconds, one garbage collection of the whole heap, frozen part included
    (`sequencer.gcpause`: frees reference cycles that freezing kept, in one pause of ~0.3 us per
    object; 0: never)."""
    loop_monitor: bool = True
    """Measure the event loop's lag and log where it stalls (`sequencer.stall`)."""
    fsync: bool = False
    """Also survive a machine crash (fsync per commit); a process crash is covered either way."""
    fault_post_root_offset: int = -1
    """Test and demo fault injection only: corrupt the post-root of transaction `k` of the next
    batch (k = this value); -1 (the default) means honest."""
    fault_tx_type: str = ""
    """Test and demo fault injection only: corrupt the post-root of the first transaction of this
    type (e.g. `fill`) in the next batch holding one; empty (the default) means honest."""
