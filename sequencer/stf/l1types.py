"""What the services read from the L1, as plain records, and the `L1Reader` protocol.

The derivation (`sequencer.stf.chain`) consumes these records only, so it runs the same against the
embedded node, anvil, any JSON-RPC endpoint, or a test's list of records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sequencer.stf.types import BatchHeader


@dataclass(frozen=True)
class L1Deposit:
    """A deposit in the Bridge's L1-to-L2 queue."""

    index: int
    """Queue position."""
    to: bytes
    """Rollup account credited."""
    amount: int
    """Collateral token units."""
    hash: bytes
    """`queue_hash(index)` as the Bridge stores it: `keccak(word(index) || word(to) || word(amount))`."""
    timestamp: int
    """L1 block time of the deposit (forced-inclusion deadline counts from it)."""
    l1_block: int
    log_index: int


@dataclass(frozen=True)
class L1Message:
    """A governance message in the Bridge's L1-to-L2 queue (an L1Message transaction on L2)."""

    index: int
    """Queue position."""
    payload: bytes
    """`kind(1) || body`, as the governor sent it (the Bridge does not read it)."""
    hash: bytes
    """`queue_hash(index)` as the Bridge stores it:
    `keccak(word(index) || word(2**256 - 1) || keccak(payload))`."""
    timestamp: int
    """L1 block time of the message (forced-inclusion deadline counts from it)."""
    l1_block: int
    log_index: int


@dataclass(frozen=True)
class L1ForcedTx:
    """A user's transaction forced through the Bridge's L1-to-L2 queue (a ForcedTx on L2)."""

    index: int
    """Queue position."""
    signed_tx: bytes
    """The inner transaction's bytes as queued (a signed Transfer, Withdraw or Cancel, or bytes
    that only advance the queue: the Bridge does not read them)."""
    hash: bytes
    """`queue_hash(index)` as the Bridge stores it:
    `keccak(word(index) || word(2**256 - 2) || keccak(signed_tx))`."""
    timestamp: int
    """L1 block time of the entry (forced-inclusion deadline counts from it)."""
    l1_block: int
    log_index: int


L1QueueEntry = L1Deposit | L1Message | L1ForcedTx
"""An entry of the Bridge's queue, which batches consume in index order."""


@dataclass(frozen=True)
class L1Batch:
    """A batch appended on L1, with the data re-read from the append transaction's calldata."""

    header: BatchHeader
    txs: tuple[bytes, ...]
    """Encoded transactions, in order."""
    roots: tuple[bytes, ...]
    """Claimed state root after each transaction."""
    l1_block: int
    log_index: int
    l1_tx_hash: bytes
    unreadable: str = ""
    """Why the append's calldata could not be read as the batch the event commits to (then `txs`
    and `roots` are empty); empty when it was read. The Rollup accepts only calldata with one
    reading, so this is a disagreement between the node and the contract: derivation stops at
    such a batch and reports it, it never skips it."""


@dataclass(frozen=True)
class L1Revert:
    """A proven fraud reverted batches `from_index` and every later one."""

    from_index: int
    """First reverted batch."""
    to_index: int
    """Last reverted batch (inclusive)."""
    l1_block: int
    log_index: int


@dataclass(frozen=True)
class L1Fraud:
    """A fraud proof succeeded."""

    batch_index: int
    tx_index: int
    sequencer: bytes
    challenger: bytes
    reward_wei: int
    l1_block: int
    log_index: int


@dataclass(frozen=True)
class L1Frozen:
    """The Rollup was frozen (protocol section 12): no batch is appended any more, and its tip is
    the state every account exits from."""

    batch_count: int
    """Live batches at the freeze (every one final)."""
    post_root: bytes
    """The frozen state's root."""
    queue_end: int
    """Queue entries from this index on were never consumed (deposits among them are refunded)."""
    timestamp: int
    """L1 time of the freeze (the exit window runs from it)."""
    l1_block: int
    log_index: int


L1Event = L1Deposit | L1Message | L1ForcedTx | L1Batch | L1Revert | L1Fraud | L1Frozen


class L1Reader(Protocol):
    """Reads rollup events from an L1, in (block, log index) order."""

    def head_block(self) -> int:
        """The latest L1 block number."""
        ...

    def block_hash(self, number: int) -> bytes | None:
        """The hash of L1 block `number` as the L1 has it now; None if it has no such block."""
        ...

    def events(self, from_block: int, to_block: int) -> list[L1Event]:
        """Every rollup event in the inclusive block range, ordered as on L1."""
        ...
