"""The embedded L1 chain: py-evm through eth-tester's `PyEVMBackend`, automine on.

`DevChain` speaks Python values (bytes addresses, int quantities, py-evm blocks); the JSON-RPC
layer (`devnet.l1.rpc`) converts. It is NOT thread-safe: the server calls it from one worker
thread only.

Every accepted transaction is mined at once in its own block (automine). Block timestamps are
chosen when the block is built, as anvil does: `now + offset` (offset moved by
`increase_time`), or the exact value set by `set_next_block_timestamp`, and always strictly
greater than the parent's (py-evm refuses equal timestamps). So blocks mined faster than one a
second run ahead of the wall clock by one second per block.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, StateAPI
from eth.exceptions import HeaderNotFound, Revert, TransactionNotFound
from eth.vm.spoof import SpoofTransaction
from eth_keys.datatypes import PrivateKey
from eth_tester import PyEVMBackend
from eth_tester.backends.pyevm.main import get_account_keys_from_mnemonic
from eth_typing import Address
from eth_utils.exceptions import ValidationError

from devnet.l1.errors import BlockNotFound, ExecutionReverted, InvalidParams, ServerError, TxRejected

DEV_MNEMONIC = "test test test test test test test test test test test junk"
"""anvil's default mnemonic: both L1s have the same dev accounts."""
DEV_HD_PATH = "m/44'/60'/0'/0"
"""Accounts are derived at `DEV_HD_PATH/i` (anvil's path)."""
DEV_ACCOUNT_COUNT = 12
DEV_BALANCE_WEI = 10_000 * 10**18
DEFAULT_CHAIN_ID = 31337
BLOCK_GAS_LIMIT = 30_000_000
DEFAULT_PRIORITY_FEE_WEI = 10**9
"""Tip used when a transaction or `eth_maxPriorityFeePerGas` does not say (anvil's 1 gwei)."""
SAFE_DEPTH_BLOCKS = 32
"""The "safe" tag is this many blocks below the head (as anvil: one epoch of slots)."""
FINALIZED_DEPTH_BLOCKS = 64
"""The "finalized" tag is this many blocks below the head (as anvil: two epochs)."""
BLOCK_CACHE_SIZE = 512

BlockId = str | int | bytes
"""A block tag ("latest", "earliest", "pending", "safe", "finalized"), a number, or a hash."""


@dataclass(frozen=True)
class DevAccount:
    """A funded, unlocked dev account."""

    address: str
    """Checksummed address."""
    private_key: str
    """0x-prefixed hex private key."""


def dev_accounts(count: int = DEV_ACCOUNT_COUNT, mnemonic: str = DEV_MNEMONIC) -> list[DevAccount]:
    """Derive the dev accounts at m/44'/60'/0'/0/i, i < count (the same as anvil's)."""
    keys_ = get_account_keys_from_mnemonic(mnemonic, quantity=count, hd_path=DEV_HD_PATH)
    return [DevAccount(k.public_key.to_checksum_address(), k.to_hex()) for k in keys_]


@dataclass(frozen=True)
class TxRequest:
    """Transaction fields of eth_sendTransaction / eth_call / eth_estimateGas (all optional)."""

    sender: bytes | None = None
    """`from`; calls default to the zero address."""
    to: bytes | None = None
    """None creates a contract."""
    gas: int | None = None
    gas_price: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    value: int = 0
    data: bytes = b""
    nonce: int | None = None
    access_list: tuple[tuple[bytes, tuple[int, ...]], ...] | None = None
    tx_type: int | None = None


@dataclass(frozen=True)
class LogEntry:
    """One log as returned by eth_getLogs and in receipts."""

    address: bytes
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    tx_index: int
    log_index: int
    """Index of the log in its block (not in its transaction)."""


@dataclass(frozen=True)
class ReceiptView:
    """A mined transaction with its receipt and the figures JSON-RPC derives from the block."""

    block: BlockAPI
    tx: SignedTransactionAPI
    index: int
    receipt: ReceiptAPI
    gas_used: int
    logs: tuple[LogEntry, ...]


@dataclass
class _Snapshot:
    head_hash: bytes
    offset_s: int
    next_timestamp: int | None


@dataclass
class TimeState:
    """How the next block's timestamp is chosen."""

    offset_s: int = 0
    """Seconds added to the wall clock (evm_increaseTime)."""
    next_timestamp: int | None = None
    """Exact timestamp of the next block (evm_setNextBlockTimestamp), then cleared."""


@dataclass
class _Caches:
    blocks: OrderedDict[bytes, BlockAPI] = field(default_factory=OrderedDict)
    logs: OrderedDict[bytes, tuple[LogEntry, ...]] = field(default_factory=OrderedDict)


def _tx_type(tx: SignedTransactionAPI) -> int:
    return int(getattr(tx, "type_id", None) or 0)


def effective_gas_price(tx: SignedTransactionAPI, base_fee: int) -> int:
    """Price per gas the sender actually pays in a block with `base_fee`."""
    if _tx_type(tx) >= 2:
        return int(min(tx.max_fee_per_gas, tx.max_priority_fee_per_gas + base_fee))
    return int(tx.gas_price)


def base_fee(header: BlockHeaderAPI) -> int:
    """Base fee per gas of a (post-London) header."""
    return int(header.base_fee_per_gas or 0)


def _legacy_chain_id(v: int) -> int | None:
    """Chain id of an EIP-155 signature (`v = 35 + 2 * chain_id + parity`), None if unprotected."""
    return (v - 35) // 2 if v >= 35 else None


def _rejection(err: Exception) -> str:
    """geth-like wording for py-evm's validation errors (clients match on these)."""
    msg = str(err)
    if "Invalid transaction nonce" in msg:
        # "Invalid transaction nonce: Expected 3, but got 1"
        try:
            expected = int(msg.split("Expected ")[1].split(",")[0])
            got = int(msg.split("but got ")[1])
        except (IndexError, ValueError):
            return f"invalid nonce: {msg}"
        word = "nonce too low" if got < expected else "nonce too high"
        return f"{word}: next nonce {expected}, tx nonce {got}"
    if "cannot afford" in msg or "enough balance" in msg or "insufficient funds" in msg:
        return f"insufficient funds for gas * price + value: {msg}"
    if "lower than block's base fee" in msg:
        return f"max fee per gas less than block base fee: {msg}"
    if "exceeds gas limit" in msg:
        return f"exceeds block gas limit: {msg}"
    if "Intrinsic gas" in msg or "intrinsic" in msg.lower():
        return f"intrinsic gas too low: {msg}"
    return msg


CALL_STIPEND = 2_300
ESTIMATE_ERROR_RATIO = 0.02
"""The bisection stops once its range is this fraction of its upper end, so an estimate is at
most about 2% above the least gas limit (`estimate * (1 - ratio) <= least`). geth stops at
1.5%; at 2% the optimistic limit (1.6% above the gas used, plus a stipend) ends the search for a
large transaction."""


def estimate_gas_limit(state: StateAPI, spoof: Callable[[int], SpoofTransaction], cap: int) -> int:
    """The gas limit `eth_estimateGas` answers, found as geth finds it: run once at `cap` (the
    gas it consumes is a lower bound, its error is the answer's), then try the optimistic limit
    `(consumed + stipend) * 64/63` (a call keeps back 1/64 of its gas), which nearly always
    succeeds, and bisect only while the range is wider than `ESTIMATE_ERROR_RATIO`. Two runs for
    a large transaction (a batch append), three or four for a small one, where py-evm's exact
    search takes about twenty-five: an append is estimated before every post, and the search had
    been most of the devnet L1's work under load."""

    def run(gas: int) -> Any:
        snapshot = state.snapshot()
        try:
            return state.apply_transaction(cast(Any, spoof(gas)))
        finally:
            state.revert(snapshot)

    first = run(cap)
    if first.is_error:
        raise first.error
    consumed = cap - first.get_gas_remaining()
    low, high = consumed - 1, cap  # low fails (not enough for what it used), high succeeds
    optimistic = min(cap, (consumed + CALL_STIPEND) * 64 // 63)
    if optimistic < high:
        if run(optimistic).is_error:
            low = optimistic
        else:
            high = optimistic
    while high - low > 1 and (high - low) / high > ESTIMATE_ERROR_RATIO:
        middle = (low + high) // 2
        if run(middle).is_error:
            low = middle
        else:
            high = middle
    return high


class DevChain:
    """A single-node dev chain with funded, unlocked accounts and anvil's dev methods."""

    def __init__(
        self,
        chain_id: int = DEFAULT_CHAIN_ID,
        accounts: int = DEV_ACCOUNT_COUNT,
        balance_wei: int = DEV_BALANCE_WEI,
        mnemonic: str = DEV_MNEMONIC,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.chain_id = chain_id
        self.clock = clock
        self.time = TimeState()
        genesis = PyEVMBackend.generate_genesis_params(
            overrides={"gas_limit": BLOCK_GAS_LIMIT, "timestamp": int(clock())}
        )
        self._backend = PyEVMBackend.from_mnemonic(
            mnemonic,
            genesis_state_overrides={"balance": balance_wei},
            num_accounts=accounts,
            genesis_parameters=genesis,
            hd_path=DEV_HD_PATH,
        )
        # eth-tester hard-codes its chain id on a class built inside a function: swap in a
        # subclass with ours (CHAINID opcode, signatures). Reverting to genesis re-creates the
        # chain from this class, so the id survives.
        tester_cls = type(self._backend.chain)
        self._backend.chain.__class__ = type("DevnetChain", (tester_cls,), {"chain_id": chain_id})
        self._keys: dict[bytes, PrivateKey] = {
            k.public_key.to_canonical_address(): k for k in self._backend.account_keys
        }
        self.accounts: list[bytes] = list(self._keys)
        self._snapshots: dict[int, _Snapshot] = {}
        self._snapshot_ids = itertools.count()
        self._caches = _Caches()

    # ------------------------------------------------------------------ blocks

    @property
    def _chain(self) -> Any:
        # re-read each time: reverting to genesis replaces the backend's chain object
        return self._backend.chain

    def head(self) -> BlockHeaderAPI:
        """The last mined block's header."""
        return self._chain.get_canonical_head()  # type: ignore[no-any-return]

    @property
    def block_number(self) -> int:
        return int(self.head().block_number)

    def resolve_number(self, block_id: str | int) -> int:
        """Block number of a tag or number; BlockNotFound when above the head."""
        head = self.block_number
        if isinstance(block_id, int):
            if block_id > head:
                raise BlockNotFound(f"block {block_id} not found (head is {head})")
            return block_id
        if block_id in ("latest", "pending"):
            return head
        if block_id == "earliest":
            return 0
        if block_id == "safe":
            return max(0, head - SAFE_DEPTH_BLOCKS)
        if block_id == "finalized":
            return max(0, head - FINALIZED_DEPTH_BLOCKS)
        raise InvalidParams(f"unknown block tag {block_id!r}")

    def _block_from_cache(self, block_hash: bytes) -> BlockAPI:
        cache = self._caches.blocks
        block = cache.get(block_hash)
        if block is None:
            block = self._chain.get_block_by_hash(block_hash)
            cache[block_hash] = block
            if len(cache) > BLOCK_CACHE_SIZE:
                cache.popitem(last=False)
        return block

    def block_by_number(self, block_id: str | int) -> BlockAPI | None:
        """A canonical block, or None when it does not exist."""
        try:
            number = self.resolve_number(block_id)
            block_hash = self._chain.chaindb.get_canonical_block_hash(number)
        except (BlockNotFound, HeaderNotFound):
            return None
        return self._block_from_cache(block_hash)

    def block_by_hash(self, block_hash: bytes) -> BlockAPI | None:
        """A canonical block by hash, or None (unknown or no longer canonical after a revert)."""
        try:
            header = self._chain.chaindb.get_block_header_by_hash(block_hash)
            canonical = self._chain.chaindb.get_canonical_block_hash(header.block_number)
        except HeaderNotFound:
            return None
        if canonical != block_hash or header.block_number > self.block_number:
            return None
        return self._block_from_cache(block_hash)

    def header_at(self, block_id: BlockId) -> BlockHeaderAPI:
        """Header of a block named by tag, number or hash; BlockNotFound if absent."""
        if isinstance(block_id, bytes):
            block = self.block_by_hash(block_id)
            if block is None:
                raise BlockNotFound(f"block 0x{block_id.hex()} not found")
            return block.header
        number = self.resolve_number(block_id)
        return self._chain.get_canonical_block_header_by_number(number)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ state

    def _state_at(self, block_id: BlockId) -> StateAPI:
        header = self.header_at(block_id)
        return self._chain.get_vm(at_header=header).state  # type: ignore[no-any-return]

    def balance(self, address: bytes, block_id: BlockId = "latest") -> int:
        return int(self._state_at(block_id).get_balance(Address(address)))

    def code(self, address: bytes, block_id: BlockId = "latest") -> bytes:
        return bytes(self._state_at(block_id).get_code(Address(address)))

    def storage(self, address: bytes, slot: int, block_id: BlockId = "latest") -> int:
        return int(self._state_at(block_id).get_storage(Address(address), slot))

    def nonce(self, address: bytes, block_id: BlockId = "latest") -> int:
        # automine: there are no pending transactions, so "pending" is "latest"
        return int(self._state_at(block_id).get_nonce(Address(address)))

    def next_base_fee(self) -> int:
        """Base fee of the next block."""
        return int(self._chain.header.base_fee_per_gas)

    # ------------------------------------------------------------------ time

    def _next_block_timestamp(self, parent_timestamp: int) -> int:
        if self.time.next_timestamp is not None:
            return max(self.time.next_timestamp, parent_timestamp + 1)
        return max(parent_timestamp + 1, int(self.clock()) + self.time.offset_s)

    def increase_time(self, seconds: int) -> int:
        """Move the clock of later blocks forward; returns the total offset in seconds."""
        if seconds < 0:
            raise InvalidParams("evm_increaseTime: seconds must be >= 0")
        # Blocks mined faster than one a second run ahead of the wall clock; count from the
        # head's timestamp then, so the next block is at least `seconds` after the head.
        drift = int(self.head().timestamp) - (int(self.clock()) + self.time.offset_s)
        self.time.offset_s += max(0, drift) + seconds
        return self.time.offset_s

    def set_next_block_timestamp(self, timestamp: int) -> None:
        """Give the next block this exact timestamp (must be after the head's)."""
        head_ts = int(self.head().timestamp)
        if timestamp <= head_ts:
            raise InvalidParams(
                f"timestamp error: {timestamp} is not after the previous block's timestamp {head_ts}"
            )
        self.time.next_timestamp = timestamp

    def _after_block(self, timestamp: int) -> None:
        if self.time.next_timestamp is not None:
            # later blocks continue from the timestamp that was set, as in anvil
            self.time.offset_s = timestamp - int(self.clock())
            self.time.next_timestamp = None

    # ------------------------------------------------------------------ mining

    def _open_block(self) -> int:
        """Stamp the pending block with its timestamp now; return the timestamp."""
        chain = self._chain
        ts = self._next_block_timestamp(int(self.head().timestamp))
        chain.header = chain.header.copy(timestamp=ts)
        return ts

    def mine(self, timestamp: int | None = None) -> bytes:
        """Mine one (empty) block; returns its hash."""
        if timestamp is not None:
            self.set_next_block_timestamp(timestamp)
        ts = self._open_block()
        (block_hash,) = self._backend.mine_blocks(1)
        self._after_block(ts)
        return bytes(block_hash)

    def _include(self, tx: SignedTransactionAPI) -> bytes:
        """Apply a signed transaction and mine it in its own block."""
        self._check_chain_id(tx)
        if self.find_transaction(tx.hash) is not None:
            raise TxRejected("already known")
        ts = self._open_block()
        try:
            self._chain.apply_transaction(tx)
        except ValidationError as err:
            raise TxRejected(_rejection(err)) from None
        self._backend.mine_blocks(1)
        self._after_block(ts)
        return bytes(tx.hash)

    def _check_chain_id(self, tx: SignedTransactionAPI) -> None:
        fields: Any = tx
        if _tx_type(tx) == 0:
            tx_chain_id = _legacy_chain_id(int(fields.v))
        else:
            tx_chain_id = int(fields.chain_id)
        if tx_chain_id is not None and tx_chain_id != self.chain_id:
            raise TxRejected(f"invalid chain id: tx signed for {tx_chain_id}, chain is {self.chain_id}")

    def send_raw_transaction(self, raw: bytes) -> bytes:
        """Decode, validate and mine a signed transaction; returns its hash."""
        builder = self._chain.get_vm().get_transaction_builder()
        try:
            tx = builder.decode(raw)
            tx.check_signature_validity()
            _ = tx.sender
        except Exception as err:  # rlp, signature and type errors all mean "bad bytes"
            raise InvalidParams(f"invalid raw transaction: {err}") from None
        return self._include(tx)

    def send_transaction(self, req: TxRequest) -> bytes:
        """Sign with an unlocked dev account and mine; returns the transaction hash."""
        if req.sender is None:
            raise InvalidParams("eth_sendTransaction: missing 'from'")
        key = self._keys.get(req.sender)
        if key is None:
            raise ServerError(f"no signer available for 0x{req.sender.hex()} (not a dev account)")
        nonce = req.nonce if req.nonce is not None else self.nonce(req.sender)
        gas = req.gas if req.gas is not None else self.estimate_gas(req)
        unsigned = self._build_unsigned(req, nonce=nonce, gas=gas, for_call=False)
        # legacy transactions get an EIP-155 signature; typed ones carry the id themselves
        return self._include(unsigned.as_signed_transaction(key, chain_id=self.chain_id))

    # ------------------------------------------------------------------ calls

    def _build_unsigned(self, req: TxRequest, nonce: int, gas: int, for_call: bool) -> Any:
        builder = self._chain.get_vm().get_transaction_builder()
        to = req.to if req.to is not None else b""
        legacy = req.gas_price is not None and req.max_fee_per_gas is None
        if req.tx_type == 0 or (legacy and req.tx_type in (None, 0)):
            return builder.create_unsigned_transaction(
                nonce=nonce,
                gas_price=req.gas_price or 0,
                gas=gas,
                to=to,
                value=req.value,
                data=req.data,
            )
        access_list = req.access_list or ()
        if req.tx_type == 1 or legacy:
            return builder.new_unsigned_access_list_transaction(
                chain_id=self.chain_id,
                nonce=nonce,
                gas_price=req.gas_price or 0,
                gas=gas,
                to=to,
                value=req.value,
                data=req.data,
                access_list=access_list,
            )
        tip: int
        max_fee: int
        if for_call:
            # eth_call / eth_estimateGas run with a zero base fee: no fee unless asked for
            tip = req.max_priority_fee_per_gas or 0
            max_fee = req.max_fee_per_gas if req.max_fee_per_gas is not None else tip
        else:
            if req.max_priority_fee_per_gas is not None:
                tip = req.max_priority_fee_per_gas
            elif req.max_fee_per_gas is not None:
                tip = min(DEFAULT_PRIORITY_FEE_WEI, req.max_fee_per_gas)
            else:
                tip = DEFAULT_PRIORITY_FEE_WEI
            if req.max_fee_per_gas is not None:
                max_fee = req.max_fee_per_gas
            else:
                max_fee = 2 * self.next_base_fee() + tip
        return builder.new_unsigned_dynamic_fee_transaction(
            chain_id=self.chain_id,
            nonce=nonce,
            max_priority_fee_per_gas=tip,
            max_fee_per_gas=max_fee,
            gas=gas,
            to=to,
            value=req.value,
            data=req.data,
            access_list=access_list,
        )

    def _call_state(self, block_id: BlockId) -> StateAPI:
        """State on top of a block, in a child block with a zero base fee and our clock."""
        header = self.header_at(block_id)
        vm = self._chain.get_vm(at_header=header)
        child = vm.generate_block_from_parent_header_and_coinbase(header, header.coinbase).header
        child = child.copy(base_fee_per_gas=0, timestamp=self._next_block_timestamp(int(header.timestamp)))
        prev_hashes = itertools.chain((header.hash,), vm.previous_hashes)
        return vm.build_state(self._chain.chaindb.db, child, vm.chain_context, prev_hashes)  # type: ignore[no-any-return]

    def _spoof(self, req: TxRequest, state: StateAPI, gas: int) -> SpoofTransaction:
        sender = req.sender if req.sender is not None else b"\x00" * 20
        nonce = req.nonce if req.nonce is not None else state.get_nonce(Address(sender))
        unsigned = self._build_unsigned(req, nonce=nonce, gas=gas, for_call=True)
        return SpoofTransaction(unsigned, from_=sender)

    def call(self, req: TxRequest, block_id: BlockId = "latest") -> bytes:
        """Execute without mining; returns the output, or raises ExecutionReverted."""
        state = self._call_state(block_id)
        tx = self._spoof(req, state, req.gas if req.gas is not None else BLOCK_GAS_LIMIT)
        try:
            computation = state.apply_transaction(cast(Any, tx))
        except ValidationError as err:
            raise ServerError(_rejection(err)) from None
        if computation.is_error:
            error = computation.error
            if isinstance(error, Revert):
                raise _reverted(bytes(computation.output))
            raise ServerError(f"execution failed: {error!r}")
        return bytes(computation.output)

    def estimate_gas(self, req: TxRequest, block_id: BlockId = "latest") -> int:
        """A gas limit with which the transaction succeeds, at most about 2% above the least one
        (`estimate_gas_limit`)."""
        state = self._call_state(block_id)
        cap = req.gas if req.gas is not None else BLOCK_GAS_LIMIT
        try:
            return estimate_gas_limit(state, lambda gas: self._spoof(req, state, gas), cap)
        except Revert as err:
            raise _reverted(bytes(err.args[0]) if err.args else b"") from None
        except ValidationError as err:
            raise ServerError(_rejection(err)) from None
        except Exception as err:  # out of gas at the block limit, invalid opcode...
            raise ServerError(f"gas required exceeds allowance or always failing: {err!r}") from None

    # ------------------------------------------------------------------ transactions

    def find_transaction(self, tx_hash: bytes) -> tuple[BlockAPI, SignedTransactionAPI, int] | None:
        """(block, tx, index) of a mined canonical transaction, or None."""
        try:
            number, index = self._chain.chaindb.get_transaction_index(tx_hash)
        except TransactionNotFound:
            return None
        block = self.block_by_number(int(number))
        if block is None or index >= len(block.transactions) or block.transactions[index].hash != tx_hash:
            return None  # the lookup survived a revert: not canonical any more
        return block, block.transactions[index], int(index)

    def receipt(self, tx_hash: bytes) -> ReceiptView | None:
        found = self.find_transaction(tx_hash)
        if found is None:
            return None
        block, tx, index = found
        receipts = block.get_receipts(self._chain.chaindb)
        before = receipts[index - 1].gas_used if index > 0 else 0
        logs = tuple(log for log in self.block_logs(block) if log.tx_index == index)
        return ReceiptView(block, tx, index, receipts[index], int(receipts[index].gas_used - before), logs)

    # ------------------------------------------------------------------ logs

    def block_logs(self, block: BlockAPI) -> tuple[LogEntry, ...]:
        """All logs of a block, cached by block hash."""
        cache = self._caches.logs
        found = cache.get(block.hash)
        if found is not None:
            return found
        entries: list[LogEntry] = []
        if block.transactions:
            receipts = block.get_receipts(self._chain.chaindb)
            for tx_index, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
                for log in receipt.logs:
                    entries.append(
                        LogEntry(
                            address=bytes(log.address),
                            topics=tuple(t.to_bytes(32, "big") for t in log.topics),
                            data=bytes(log.data),
                            block_number=int(block.number),
                            block_hash=bytes(block.hash),
                            tx_hash=bytes(tx.hash),
                            tx_index=tx_index,
                            log_index=len(entries),
                        )
                    )
        result = tuple(entries)
        cache[block.hash] = result
        if len(cache) > 16 * BLOCK_CACHE_SIZE:
            cache.popitem(last=False)
        return result

    def logs(
        self,
        from_block: str | int = "latest",
        to_block: str | int = "latest",
        addresses: Sequence[bytes] = (),
        topics: Sequence[Sequence[bytes] | None] = (),
        block_hash: bytes | None = None,
    ) -> list[LogEntry]:
        """Logs matching eth_getLogs' filter: any address of the list, topic positions AND,
        each position an OR-list or None (anything)."""
        if block_hash is not None:
            block = self.block_by_hash(block_hash)
            if block is None:
                raise BlockNotFound(f"block 0x{block_hash.hex()} not found")
            blocks: Iterator[BlockAPI] = iter((block,))
        else:
            start = self.resolve_number(from_block) if from_block != "pending" else self.block_number
            end = self.resolve_number(to_block) if to_block != "pending" else self.block_number
            if start > end:
                raise InvalidParams(f"invalid block range: fromBlock {start} > toBlock {end}")
            blocks = (b for b in (self.block_by_number(n) for n in range(start, end + 1)) if b is not None)
        wanted = set(addresses)
        out: list[LogEntry] = []
        for block in blocks:
            for log in self.block_logs(block):
                if wanted and log.address not in wanted:
                    continue
                if _topics_match(log.topics, topics):
                    out.append(log)
        return out

    # ------------------------------------------------------------------ fees

    def fee_history(
        self, block_count: int, newest: str | int, percentiles: Sequence[float]
    ) -> dict[str, Any]:
        """eth_feeHistory: base fees (one more than blocks), gas used ratios, tip percentiles."""
        newest_n = self.resolve_number(newest)
        count = max(0, min(block_count, 1024, newest_n + 1))
        oldest = newest_n - count + 1
        base_fees: list[int] = []
        ratios: list[float] = []
        rewards: list[list[int]] = []
        for n in range(oldest, newest_n + 1):
            block = self.block_by_number(n)
            assert block is not None
            header = block.header
            base_fees.append(base_fee(header))
            ratios.append(header.gas_used / header.gas_limit)
            if percentiles:
                rewards.append(self._block_tip_percentiles(block, percentiles))
        if newest_n == self.block_number:
            base_fees.append(self.next_base_fee())
        else:
            base_fees.append(base_fee(self.header_at(newest_n + 1)))
        return {"oldest": oldest, "base_fees": base_fees, "ratios": ratios, "rewards": rewards}

    def _block_tip_percentiles(self, block: BlockAPI, percentiles: Sequence[float]) -> list[int]:
        if not block.transactions:
            return [0 for _ in percentiles]
        fee = base_fee(block.header)
        receipts = block.get_receipts(self._chain.chaindb)
        tips: list[tuple[int, int]] = []
        before = 0
        for tx, receipt in zip(block.transactions, receipts, strict=True):
            tips.append((effective_gas_price(tx, fee) - fee, receipt.gas_used - before))
            before = receipt.gas_used
        tips.sort()
        total = sum(g for _, g in tips) or 1
        out = []
        for p in percentiles:
            threshold = total * p / 100
            acc = 0
            chosen = tips[-1][0]
            for tip, gas in tips:
                acc += gas
                if acc >= threshold:
                    chosen = tip
                    break
            out.append(chosen)
        return out

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> int:
        """Remember the chain head and the clock; returns the snapshot id."""
        sid = next(self._snapshot_ids)
        self._snapshots[sid] = _Snapshot(
            bytes(self.head().hash), self.time.offset_s, self.time.next_timestamp
        )
        return sid

    def revert(self, snapshot_id: int) -> bool:
        """Go back to a snapshot; it and all later snapshots are used up. False if unknown."""
        snap = self._snapshots.get(snapshot_id)
        if snap is None:
            return False
        self._backend.revert_to_snapshot(snap.head_hash)
        self.time.offset_s = snap.offset_s
        self.time.next_timestamp = snap.next_timestamp
        for sid in [s for s in self._snapshots if s >= snapshot_id]:
            del self._snapshots[sid]
        return True


def _reverted(output: bytes) -> ExecutionReverted:
    """geth's revert error: message with the decoded Error(string) reason, data = raw output."""
    reason = decode_revert_reason(output)
    message = f"execution reverted: {reason}" if reason else "execution reverted"
    return ExecutionReverted(message, data="0x" + output.hex())


ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")


def decode_revert_reason(output: bytes) -> str | None:
    """The string of an ABI-encoded Error(string), else None."""
    if output[:4] != ERROR_STRING_SELECTOR or len(output) < 4 + 64:
        return None
    body = output[4:]
    try:
        offset = int.from_bytes(body[:32], "big")
        length = int.from_bytes(body[offset : offset + 32], "big")
        raw = body[offset + 32 : offset + 32 + length]
        if len(raw) != length:
            return None
        return raw.decode("utf-8", errors="replace")
    except (ValueError, OverflowError):
        return None


def _topics_match(log_topics: Sequence[bytes], wanted: Sequence[Sequence[bytes] | None]) -> bool:
    """Position i of `wanted` is None (anything, even no topic: anvil's reading) or an OR-list."""
    for i, options in enumerate(wanted):
        if not options:
            continue
        if i >= len(log_topics) or log_topics[i] not in options:
            return False
    return True
