"""Reading a batch back from an `append_batch` transaction's input, as the Rollup read it.

The derivation reads batch data from L1 calldata. web3's strict ABI decoder refuses inputs that
Vyper's decoder accepts (non-zero padding after a `bytes` item, say), and a sequencer must not be
able to blind every watcher that way. So this decoder follows the offsets exactly as Vyper does,
bounds every read, ignores padding, and the caller checks the result against the commitments the
contract computed (`tx_root`, `roots_root`): if they agree, these are the batch's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import function_signature_to_4byte_selector

APPEND_BATCH_SELECTOR = function_signature_to_4byte_selector(
    "append_batch(bytes32,uint256,uint256,uint256,bytes[],bytes32[])"
)
"""The 4-byte selector of `Rollup.append_batch(prev_root, queue_start, queue_end, l2_time, txs, roots)`."""

MAX_TX_BYTES = 1024
"""Longest transaction the Rollup's `Bytes[1024]` accepts."""
MAX_BATCH_TXS = 256
"""Most items the Rollup's `DynArray[..., 256]` accepts."""

_HEAD_WORDS = 6
"""Words of the argument head: prev_root, queue_start, queue_end, l2_time, txs offset, roots offset."""


class CalldataError(ValueError):
    """The input is not an `append_batch` call the Rollup could have accepted."""


@dataclass(frozen=True)
class AppendBatchCall:
    """The arguments of one `append_batch` call."""

    prev_root: bytes
    queue_start: int
    queue_end: int
    l2_time: int
    txs: tuple[bytes, ...]
    """The encoded transactions."""
    roots: tuple[bytes, ...]
    """The state root after each transaction."""


def _word(data: bytes, at: int) -> int:
    if at < 0 or at + 32 > len(data):
        raise CalldataError(f"read past the end of the arguments at {at}")
    return int.from_bytes(data[at : at + 32], "big")


def decode_append_batch(data: bytes) -> AppendBatchCall:
    """The arguments of an `append_batch` call's input."""
    if data[:4] != APPEND_BATCH_SELECTOR:
        raise CalldataError("not an append_batch call")
    args = data[4:]
    if len(args) < _HEAD_WORDS * 32:
        raise CalldataError("arguments too short")
    prev_root = args[0:32]
    queue_start, queue_end, l2_time = _word(args, 32), _word(args, 64), _word(args, 96)
    txs_at, roots_at = _word(args, 128), _word(args, 160)
    n = _word(args, txs_at)
    if n > MAX_BATCH_TXS:
        raise CalldataError(f"{n} transactions")
    base = txs_at + 32
    txs = []
    for i in range(n):
        at = base + _word(args, base + 32 * i)
        length = _word(args, at)
        if length > MAX_TX_BYTES or at + 32 + length > len(args):
            raise CalldataError(f"transaction {i} out of bounds")
        txs.append(bytes(args[at + 32 : at + 32 + length]))
    m = _word(args, roots_at)
    if m > MAX_BATCH_TXS:
        raise CalldataError(f"{m} roots")
    roots = tuple(args[roots_at + 32 + 32 * i : roots_at + 64 + 32 * i] for i in range(m))
    if any(len(r) != 32 for r in roots):
        raise CalldataError("roots out of bounds")
    return AppendBatchCall(
        bytes(prev_root), queue_start, queue_end, l2_time, tuple(txs), tuple(bytes(r) for r in roots)
    )
