"""Reading a batch back from an `append_batch` transaction's input, exactly as the Rollup read it.

The Rollup accepts only the canonical ABI encoding of `append_batch`'s arguments (protocol.md
section 4, "Append calldata"): the offsets where the standard encoder puts them, each `bytes` item
padded with zeros to a whole word, nothing after the last root. Such an input has one reading, so
this decoder, the contract's and any standard ABI library's agree on it. This decoder refuses
everything else with `CalldataError`, naming the first rule broken; the caller still checks the
result against the commitments the contract computed (`tx_root`, `roots_root`, `tx_count`), so
a future divergence is caught loudly instead of read silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector

APPEND_BATCH_SELECTOR = function_signature_to_4byte_selector(
    "append_batch(bytes32,uint256,uint256,uint256,bytes[],bytes32[])"
)
"""The 4-byte selector of `Rollup.append_batch(prev_root, queue_start, queue_end, l2_time, txs, roots)`."""

MAX_TX_BYTES = 1024
"""Longest transaction the Rollup's `Bytes[1024]` accepts."""
MAX_BATCH_TXS = 256
"""Most items the Rollup's `DynArray[..., 256]` accepts."""

APPEND_BATCH_TYPES = ("bytes32", "uint256", "uint256", "uint256", "bytes[]", "bytes32[]")
"""The ABI types of `append_batch`'s arguments, in order."""

HEAD_BYTES = 192
"""Bytes of the argument head: prev_root, queue_start, queue_end, l2_time, offset(txs),
offset(roots); in the canonical encoding `txs` starts right after it."""


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


def _word(args: bytes, at: int) -> int:
    if at + 32 > len(args):
        raise CalldataError(f"non-canonical calldata: read past the end of the arguments at {at}")
    return int.from_bytes(args[at : at + 32], "big")


def _expect(args: bytes, at: int, value: int, what: str) -> None:
    found = _word(args, at)
    if found != value:
        raise CalldataError(f"non-canonical calldata: {what} is {found} at {at}, must be {value}")


def encode_append_batch(call: AppendBatchCall) -> bytes:
    """An `append_batch` call's input: its selector and the standard (canonical) ABI encoding of
    its arguments, which is what web3 would send, without web3's slower argument checks."""
    args = [call.prev_root, call.queue_start, call.queue_end, call.l2_time, list(call.txs), list(call.roots)]
    return APPEND_BATCH_SELECTOR + abi_encode(list(APPEND_BATCH_TYPES), args)


def decode_append_batch(data: bytes) -> AppendBatchCall:
    """The arguments of an `append_batch` call's input; `CalldataError` unless it is the canonical
    encoding of 1 to `MAX_BATCH_TXS` transactions of at most `MAX_TX_BYTES` bytes each, with as
    many roots (the input shapes the Rollup accepts)."""
    if data[:4] != APPEND_BATCH_SELECTOR:
        raise CalldataError("not an append_batch call")
    args = data[4:]
    _expect(args, 128, HEAD_BYTES, "the offset of txs")
    n = _word(args, HEAD_BYTES)
    if not 1 <= n <= MAX_BATCH_TXS:
        raise CalldataError(f"{n} transactions (1 to {MAX_BATCH_TXS})")
    txs = []
    tail = 32 * n  # where item i must start, counted from the first item offset
    for i in range(n):
        _expect(args, HEAD_BYTES + 32 + 32 * i, tail, f"the offset of transaction {i}")
        item = HEAD_BYTES + 32 + tail
        length = _word(args, item)
        if length > MAX_TX_BYTES:
            raise CalldataError(f"transaction {i} has {length} bytes (at most {MAX_TX_BYTES})")
        padded = -(-length // 32) * 32
        body = args[item + 32 : item + 32 + padded]
        if len(body) != padded:
            raise CalldataError(f"non-canonical calldata: transaction {i} runs past the end")
        if any(body[length:]):
            raise CalldataError(f"non-canonical calldata: transaction {i} has non-zero padding")
        txs.append(bytes(body[:length]))
        tail += 32 + padded
    roots_at = HEAD_BYTES + 32 + tail
    _expect(args, 160, roots_at, "the offset of roots")
    _expect(args, roots_at, n, "the number of roots")
    end = roots_at + 32 + 32 * n
    if len(args) != end:
        raise CalldataError(f"non-canonical calldata: {len(args)} bytes of arguments, must be {end}")
    roots = tuple(bytes(args[roots_at + 32 + 32 * i : roots_at + 64 + 32 * i]) for i in range(n))
    return AppendBatchCall(
        bytes(args[0:32]), _word(args, 32), _word(args, 64), _word(args, 96), tuple(txs), roots
    )
