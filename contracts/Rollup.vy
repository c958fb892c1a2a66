# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Rollup
@custom:contract-name Rollup
@license MIT
@notice The L1 chain of batches of the derivatives rollup
        (docs/protocol.md sections 4 and 5). Bonded sequencers append
        batches whose transaction root and state-root root are computed
        here from the calldata; anyone may prove a batch wrong inside
        its challenge window with one transaction (`prove_tx_fraud`,
        `prove_queue_fraud`), which reverts that batch and every later
        one and slashes the sequencer that appended it. When no batch has
        been appended for `ESCAPE_DELAY_SECONDS` while a queue entry is
        overdue, anyone may `freeze` it (protocol.md section 12): no
        more appends, and the Bridge pays every account its exit from
        the tip's state, which is final by then.
@dev Slashing takes the whole bond: `CHALLENGER_REWARD_BPS` of it is
     paid to the challenger, the rest is burned, i.e. kept locked in this
     contract forever (no function can move it) and counted in
     `total_burned`. All external functions are non-reentrant.
"""

import batch_header
import merkle
import smt
import state_keys


# @dev The FraudVerifier: re-executes one transaction (protocol.md section 3).
interface IFraudVerifier:
    def apply_tx(
        pre_root: bytes32,
        tx_data: Bytes[MAX_TX_BYTES],
        witnesses: DynArray[smt.Witness, MAX_WITNESSES],
        queue_end: uint256,
        l2_time: uint256,
    ) -> bytes32: view


# @dev The Bridge: the L1 queue of deposits, messages and forced transactions (protocol.md section 6).
interface IBridge:
    def queue_length() -> uint256: view
    def queue_timestamp(index: uint256) -> uint256: view


# @dev Longest encoded transaction.
MAX_TX_BYTES: constant(uint256) = 1024


# @dev Most transactions in one batch.
MAX_BATCH_TXS: constant(uint256) = merkle.MAX_BATCH_TXS


# @dev Most state leaves one transaction touches.
MAX_WITNESSES: constant(uint256) = 12


# @dev Longest merkletools inclusion proof in a batch tree.
MAX_PROOF_LENGTH: constant(uint256) = merkle.MAX_PROOF_LENGTH


# @dev Basis points in one whole.
BPS: constant(uint256) = 10_000


# @dev The `tx_index` of `FraudProven` for a queue fraud (no transaction).
QUEUE_FRAUD: constant(uint256) = max_value(uint256)


# @dev Bytes before the arguments in the calldata (the function selector).
SELECTOR_BYTES: constant(uint256) = 4


# @dev Bytes of `append_batch`'s argument head: four static words and the offsets of `txs` and
#      `roots`; in the canonical encoding `txs` starts right after it.
APPEND_HEAD_BYTES: constant(uint256) = 192


# @dev The registration of one sequencer.
struct Sequencer:
    bond: uint256
    slashed: bool
    last_batch_timestamp: uint256


# EVENTS #


event Initialized:
    verifier: indexed(address)
    bridge: indexed(address)


event SequencerBonded:
    sequencer: indexed(address)
    amount: uint256
    bond: uint256


event BondWithdrawn:
    sequencer: indexed(address)
    amount: uint256


event BatchAppended:
    index: indexed(uint256)
    prev_root: bytes32
    post_root: bytes32
    tx_root: bytes32
    roots_root: bytes32
    tx_count: uint256
    queue_start: uint256
    queue_end: uint256
    l2_time: uint256
    sequencer: indexed(address)
    timestamp: uint256


event FraudProven:
    batch_index: indexed(uint256)
    tx_index: uint256
    sequencer: indexed(address)
    challenger: indexed(address)
    reward: uint256


event SequencerSlashed:
    sequencer: indexed(address)
    bond: uint256
    reward: uint256
    burned: uint256


event BatchesReverted:
    from_index: indexed(uint256)
    to_index: uint256


event Frozen:
    batch_count: uint256
    post_root: bytes32
    queue_end: uint256
    timestamp: uint256


# STORAGE #


# @dev Seconds a batch stays open to fraud proofs.
CHALLENGE_WINDOW_SECONDS: public(immutable(uint256))


# @dev Least bond of a sequencer allowed to append.
MIN_BOND_WEI: public(immutable(uint256))


# @dev Share of a slashed bond paid to the challenger, in basis points.
CHALLENGER_REWARD_BPS: public(immutable(uint256))


# @dev Age at which a queue entry (deposit or message) must be consumed by the next batch.
FORCE_INCLUSION_SECONDS: public(immutable(uint256))


# @dev How far a batch's `l2_time` may lag behind the L1 block's timestamp.
MAX_L2_TIME_LAG_SECONDS: public(immutable(uint256))


# @dev Seconds without an append, with a queue entry overdue, after which anyone may freeze the
#      Rollup; longer than the challenge window, so every batch is final by then.
ESCAPE_DELAY_SECONDS: public(immutable(uint256))


# @dev The account allowed to call `initialize` once (the deployer).
initializer: public(address)


# @dev The FraudVerifier contract (set once by `initialize`).
verifier: public(IFraudVerifier)


# @dev The Bridge contract (set once by `initialize`).
bridge: public(IBridge)


# @dev `keccak(abi.encode(header))` of each batch; entries at or past
#      `batch_count` belong to reverted batches and are meaningless.
batch_hash: public(HashMap[uint256, bytes32])


# @dev Number of live (not reverted) batches; the next batch's index.
batch_count: public(uint256)


# @dev The tip's state root: the last live batch's `post_root` (EMPTY at genesis).
tip_post_root: public(bytes32)


# @dev The tip's queue position: the last live batch's `queue_end`.
tip_queue_end: public(uint256)


# @dev The `l2_time` of each batch (so a revert gives the tip back its
#      clock); entries at or past `batch_count` are meaningless.
batch_l2_time: public(HashMap[uint256, uint256])


# @dev Bond, slash flag and last append time of each sequencer.
sequencers: public(HashMap[address, Sequencer])


# @dev Total wei of slashed bonds not paid to challengers (locked forever).
total_burned: public(uint256)


# @dev L1 timestamp of the last append (reverted or not), or of `initialize` before any.
last_append_timestamp: public(uint256)


# @dev L1 timestamp of `freeze` (0 while not frozen); the tip is then the frozen state.
frozen_at: public(uint256)


@deploy
def __init__(
    challenge_window_seconds: uint256,
    min_bond_wei: uint256,
    challenger_reward_bps: uint256,
    force_inclusion_seconds: uint256,
    max_l2_time_lag_seconds: uint256,
    escape_delay_seconds: uint256,
):
    """
    @dev Sets the deployment parameters (protocol.md section 1).
    @param challenge_window_seconds Seconds a batch stays challengeable.
    @param min_bond_wei Least bond to append batches.
    @param challenger_reward_bps Challenger's share of a slashed bond.
    @param force_inclusion_seconds Deadline to consume a queue entry.
    @param max_l2_time_lag_seconds Most a batch's `l2_time` may lag the L1 block's timestamp.
    @param escape_delay_seconds Seconds without an append after which the Rollup may be frozen
           (above the challenge window).
    """
    assert challenger_reward_bps <= BPS, "rollup: reward above 100%"
    assert min_bond_wei > 0, "rollup: zero min bond"
    assert escape_delay_seconds > challenge_window_seconds, "rollup: escape delay within challenge window"
    CHALLENGE_WINDOW_SECONDS = challenge_window_seconds
    MIN_BOND_WEI = min_bond_wei
    CHALLENGER_REWARD_BPS = challenger_reward_bps
    FORCE_INCLUSION_SECONDS = force_inclusion_seconds
    MAX_L2_TIME_LAG_SECONDS = max_l2_time_lag_seconds
    ESCAPE_DELAY_SECONDS = escape_delay_seconds
    self.initializer = msg.sender


@external
def initialize(verifier: address, bridge: address):
    """
    @dev Wires the FraudVerifier and the Bridge (they refer back to this
         contract, hence a one-time initializer). Deployer only, once.
    @param verifier The FraudVerifier address.
    @param bridge The Bridge address.
    """
    assert msg.sender == self.initializer, "rollup: not initializer"
    assert verifier != empty(address) and bridge != empty(address), "rollup: zero address"
    self.initializer = empty(address)
    self.verifier = IFraudVerifier(verifier)
    self.bridge = IBridge(bridge)
    self.last_append_timestamp = block.timestamp
    log Initialized(verifier=verifier, bridge=bridge)


@external
@payable
def register():
    """
    @dev Bonds the caller as a sequencer, or tops up its bond, with
         `msg.value`. The resulting bond must be at least `MIN_BOND_WEI`.
         A slashed sequencer can never register again.
    """
    assert msg.value > 0, "rollup: zero bond"
    info: Sequencer = self.sequencers[msg.sender]
    assert not info.slashed, "rollup: slashed"
    info.bond += msg.value
    assert info.bond >= MIN_BOND_WEI, "rollup: bond too small"
    self.sequencers[msg.sender] = info
    log SequencerBonded(sequencer=msg.sender, amount=msg.value, bond=info.bond)


@external
def withdraw_bond():
    """
    @dev Pays the caller's whole bond back, once its last batch is final
         (the challenge window since its last append has passed). The
         caller is no longer bonded afterwards.
    """
    info: Sequencer = self.sequencers[msg.sender]
    assert info.bond > 0, "rollup: not bonded"
    assert (
        block.timestamp >= info.last_batch_timestamp + CHALLENGE_WINDOW_SECONDS
    ), "rollup: last batch not final"
    amount: uint256 = info.bond
    self.sequencers[msg.sender].bond = 0
    log BondWithdrawn(sequencer=msg.sender, amount=amount)
    raw_call(msg.sender, b"", value=amount)


@external
def append_batch(
    prev_root: bytes32,
    queue_start: uint256,
    queue_end: uint256,
    l2_time: uint256,
    txs: DynArray[Bytes[MAX_TX_BYTES], MAX_BATCH_TXS],
    roots: DynArray[bytes32, MAX_BATCH_TXS],
):
    """
    @dev Appends a batch (protocol.md section 4). `prev_root` and
         `queue_start` are what the sequencer built on: they must equal
         the tip, so a batch built on a stale tip is refused instead of
         being appended on the wrong state. `l2_time` is the batch's
         clock: not before the tip's, not after this block, and at most
         `MAX_L2_TIME_LAG_SECONDS` behind it. The calldata must be the
         canonical ABI encoding of the arguments, so that it has one
         reading ("rollup: non-canonical calldata" otherwise).
    @param prev_root The state root before the batch (the tip's post root).
    @param queue_start The first queue index the batch may consume (the tip's queue end).
    @param queue_end One past the last queue index the batch consumes.
    @param l2_time The batch's clock (unix seconds).
    @param txs The encoded transactions, 1 to 256, each at most 1024 bytes.
    @param roots The state root after each transaction.
    """
    # Data availability: the batch data is read back from the top-level transaction's input, so
    # the call must come straight from a plain EOA (no contract, no EIP-7702 delegated code).
    assert msg.sender == tx.origin and msg.sender.codesize == 0, "rollup: sequencer must be a plain EOA"
    assert self.frozen_at == 0, "rollup: frozen"
    info: Sequencer = self.sequencers[msg.sender]
    assert info.bond >= MIN_BOND_WEI and not info.slashed, "rollup: not bonded"
    assert prev_root == self.tip_post_root, "rollup: wrong prev_root"
    assert queue_start == self.tip_queue_end, "rollup: wrong queue_start"
    assert queue_start <= queue_end, "rollup: queue_end before queue_start"
    queue_length: uint256 = staticcall self.bridge.queue_length()
    assert queue_end <= queue_length, "rollup: queue_end past deposits"
    assert l2_time >= self._tip_l2_time(), "rollup: l2_time before tip"
    assert l2_time <= block.timestamp, "rollup: l2_time ahead of L1"
    assert l2_time + MAX_L2_TIME_LAG_SECONDS >= block.timestamp, "rollup: l2_time behind L1"
    n: uint256 = len(txs)
    assert n >= 1, "rollup: empty batch"
    if queue_end < queue_length:
        # An overdue queue entry must not be left behind, unless the batch is nothing but queue
        # entries (each consumed entry is one transaction): a backlog larger than a batch drains
        # instead of halting every append.
        assert (
            block.timestamp < staticcall self.bridge.queue_timestamp(queue_end) + FORCE_INCLUSION_SECONDS
            or queue_end - queue_start == n
        ), "rollup: overdue queue entry"
    assert len(roots) == n, "rollup: roots length"

    # One reading only (protocol.md section 4): the calldata must be the canonical ABI encoding of
    # the arguments (offsets exactly where the encoder puts them, zero padding, nothing after the
    # last root), so every decoder, strict or lenient, reads the batch this function reads.
    assert self._arg_word(128) == APPEND_HEAD_BYTES, "rollup: non-canonical calldata"
    # `tail`: the offset of item i counted from the start of `txs`'s item offsets, as it must be.
    tail: uint256 = 32 * n
    tx_leaves: DynArray[bytes32, MAX_BATCH_TXS] = []
    root_leaves: DynArray[bytes32, MAX_BATCH_TXS] = []
    for i: uint256 in range(n, bound=MAX_BATCH_TXS):
        # Item i starts where the items before it end (the decoder read its length there).
        assert (
            convert(slice(msg.data, SELECTOR_BYTES + APPEND_HEAD_BYTES + 32 + 32 * i, 32), uint256) == tail
        ), "rollup: non-canonical calldata"
        length: uint256 = len(txs[i])
        partial: uint256 = length % 32
        if partial != 0:
            # The item's last word: its last `partial` data bytes, then zero padding.
            last: uint256 = convert(
                slice(msg.data, SELECTOR_BYTES + APPEND_HEAD_BYTES + 64 + tail + length - partial, 32), uint256
            )
            assert last % (1 << (256 - 8 * partial)) == 0, "rollup: non-canonical calldata"
        tail += 32 + length + (32 - partial) % 32
        tx_leaves.append(merkle.tx_leaf(txs[i]))
        root_leaves.append(merkle.root_leaf(roots[i]))
    roots_at: uint256 = APPEND_HEAD_BYTES + 32 + tail
    assert (
        self._arg_word(160) == roots_at and len(msg.data) == SELECTOR_BYTES + roots_at + 32 + 32 * n
    ), "rollup: non-canonical calldata"

    header: batch_header.BatchHeader = batch_header.BatchHeader(
        index=self.batch_count,
        prev_root=prev_root,
        post_root=roots[n - 1],
        tx_root=merkle.root(tx_leaves),
        roots_root=merkle.root(root_leaves),
        tx_count=n,
        queue_start=queue_start,
        queue_end=queue_end,
        l2_time=l2_time,
        sequencer=msg.sender,
        timestamp=block.timestamp,
    )
    self.batch_hash[header.index] = batch_header.hash(header)
    self.batch_l2_time[header.index] = l2_time
    self.batch_count = header.index + 1
    self.tip_post_root = header.post_root
    self.tip_queue_end = queue_end
    self.sequencers[msg.sender].last_batch_timestamp = block.timestamp
    self.last_append_timestamp = block.timestamp
    log BatchAppended(
        index=header.index,
        prev_root=header.prev_root,
        post_root=header.post_root,
        tx_root=header.tx_root,
        roots_root=header.roots_root,
        tx_count=header.tx_count,
        queue_start=header.queue_start,
        queue_end=header.queue_end,
        l2_time=header.l2_time,
        sequencer=header.sequencer,
        timestamp=header.timestamp,
    )


@external
def prove_tx_fraud(
    header: batch_header.BatchHeader,
    i: uint256,
    tx_data: Bytes[MAX_TX_BYTES],
    tx_proof: DynArray[bytes32, MAX_PROOF_LENGTH],
    pre_root: bytes32,
    pre_proof: DynArray[bytes32, MAX_PROOF_LENGTH],
    post_root: bytes32,
    post_proof: DynArray[bytes32, MAX_PROOF_LENGTH],
    witnesses: DynArray[smt.Witness, MAX_WITNESSES],
):
    """
    @dev Proves that transaction `i` of a live batch inside its window
         does not lead from its committed pre-state root to its committed
         post-state root (protocol.md section 5). On success the batch and
         every later one are reverted and its sequencer is slashed.
    @param header The challenged batch's header (must hash to `batch_hash[header.index]`).
    @param i The transaction's index in the batch.
    @param tx_data The encoded transaction: leaf `i` of `header.tx_root`.
    @param tx_proof Its merkletools inclusion proof.
    @param pre_root The state root before `tx`: leaf `i - 1` of `header.roots_root`
           (for `i == 0`, `header.prev_root` with an empty `pre_proof`).
    @param pre_proof Its inclusion proof.
    @param post_root The committed root after `tx`: leaf `i` of `header.roots_root`.
    @param post_proof Its inclusion proof.
    @param witnesses One witness per touched key, in protocol order, sequential.
    """
    self._check_challengeable(header)
    assert merkle.verify(
        merkle.tx_leaf(tx_data), i, header.tx_count, tx_proof, header.tx_root
    ), "rollup: bad tx proof"
    assert merkle.verify(
        merkle.root_leaf(post_root), i, header.tx_count, post_proof, header.roots_root
    ), "rollup: bad post_root proof"
    if i == 0:
        assert pre_root == header.prev_root and len(pre_proof) == 0, "rollup: bad pre_root proof"
    else:
        assert merkle.verify(
            merkle.root_leaf(pre_root), i - 1, header.tx_count, pre_proof, header.roots_root
        ), "rollup: bad pre_root proof"
    computed: bytes32 = staticcall self.verifier.apply_tx(
        pre_root, tx_data, witnesses, header.queue_end, header.l2_time
    )
    assert computed != post_root, "rollup: no fraud"
    self._punish(header, i)


@external
def prove_queue_fraud(header: batch_header.BatchHeader, witness: smt.Witness):
    """
    @dev Proves that a live batch inside its window ends with
         `next_queue_index != queue_end` (protocol.md section 5): the
         witness for the Global key checks against `header.post_root`.
         A Global value that is not one 32-byte word is fraud too.
    @param header The challenged batch's header.
    @param witness The witness of the Global key against `header.post_root`.
    """
    self._check_challengeable(header)
    assert witness.key == state_keys.GLOBAL_KEY, "rollup: bad witness"
    assert smt.check(header.post_root, witness), "rollup: bad witness"
    fraud: bool = True
    if len(witness.value) == 0:
        fraud = header.queue_end != 0
    elif len(witness.value) == 32:
        fraud = extract32(witness.value, 0, output_type=uint256) != header.queue_end
    assert fraud, "rollup: no fraud"
    self._punish(header, QUEUE_FRAUD)


@external
def freeze():
    """
    @dev Freezes the Rollup (protocol.md section 12): anyone may, once no
         batch has been appended for `ESCAPE_DELAY_SECONDS` while the
         queue entry at the tip's `queue_end` is overdue (older than
         `FORCE_INCLUSION_SECONDS`). Appends are refused from then on;
         the tip, final by then (the delay is above the challenge
         window), is the state every account exits from.
    """
    assert self.frozen_at == 0, "rollup: frozen"
    assert self.bridge.address != empty(address), "rollup: not initialized"
    queue_end: uint256 = self.tip_queue_end
    assert queue_end < staticcall self.bridge.queue_length(), "rollup: no overdue queue entry"
    assert (
        block.timestamp >= staticcall self.bridge.queue_timestamp(queue_end) + FORCE_INCLUSION_SECONDS
    ), "rollup: no overdue queue entry"
    assert block.timestamp >= self.last_append_timestamp + ESCAPE_DELAY_SECONDS, "rollup: escape delay not passed"
    self.frozen_at = block.timestamp
    log Frozen(
        batch_count=self.batch_count,
        post_root=self.tip_post_root,
        queue_end=queue_end,
        timestamp=block.timestamp,
    )


@external
@view
def is_final(header: batch_header.BatchHeader) -> bool:
    """
    @dev Returns whether `header` is a live batch whose challenge window
         has passed (protocol.md section 4).
    @param header The batch header.
    @return bool True iff the batch is final.
    """
    return self._is_live(header) and block.timestamp >= header.timestamp + CHALLENGE_WINDOW_SECONDS


@external
@view
def is_live(header: batch_header.BatchHeader) -> bool:
    """
    @dev Returns whether `header` is a batch of the current chain (appended
         and not reverted), final or not.
    @param header The batch header.
    @return bool True iff the batch is live.
    """
    return self._is_live(header)


@external
@view
def tip() -> (uint256, bytes32, uint256, uint256):
    """
    @dev Returns the tip: the number of live batches (the next index),
         the last live batch's post root, its queue end and its l2_time.
    @return uint256 `batch_count`.
    @return bytes32 `tip_post_root`.
    @return uint256 `tip_queue_end`.
    @return uint256 `tip_l2_time()`.
    """
    return self.batch_count, self.tip_post_root, self.tip_queue_end, self._tip_l2_time()


@external
@view
def tip_l2_time() -> uint256:
    """
    @dev Returns the clock of the tip: the last live batch's `l2_time`
         (0 at genesis). A batch's `l2_time` may not be earlier.
    @return uint256 The tip's `l2_time`.
    """
    return self._tip_l2_time()


@external
@view
def hash_header(header: batch_header.BatchHeader) -> bytes32:
    """
    @dev Returns `keccak(abi.encode(header))`, the value stored in `batch_hash`.
    @param header The batch header.
    @return bytes32 The batch hash.
    """
    return batch_header.hash(header)


@external
@view
def is_bonded(sequencer: address) -> bool:
    """
    @dev Returns whether `sequencer` may append batches.
    @param sequencer The sequencer's address.
    @return bool True iff bonded with at least `MIN_BOND_WEI` and not slashed.
    """
    info: Sequencer = self.sequencers[sequencer]
    return info.bond >= MIN_BOND_WEI and not info.slashed


@internal
@view
def _arg_word(at: uint256) -> uint256:
    """
    @dev Returns the 32-byte word at byte `at` of the call's arguments (after the selector).
    """
    return convert(slice(msg.data, SELECTOR_BYTES + at, 32), uint256)


@internal
@view
def _tip_l2_time() -> uint256:
    """
    @dev Returns the last live batch's `l2_time`, 0 when there is none.
    """
    count: uint256 = self.batch_count
    if count == 0:
        return 0
    return self.batch_l2_time[count - 1]


@internal
@view
def _is_live(header: batch_header.BatchHeader) -> bool:
    """
    @dev Returns whether `header` hashes to the stored hash of a live batch.
    """
    return header.index < self.batch_count and self.batch_hash[header.index] == batch_header.hash(header)


@internal
@view
def _check_challengeable(header: batch_header.BatchHeader):
    """
    @dev Reverts unless `header` is a live batch inside its window.
    """
    assert self._is_live(header), "rollup: unknown batch"
    assert block.timestamp < header.timestamp + CHALLENGE_WINDOW_SECONDS, "rollup: batch final"


@internal
def _punish(header: batch_header.BatchHeader, tx_index: uint256):
    """
    @dev Reverts batch `header.index` and every later one, slashes the
         batch's sequencer and pays the challenger (msg.sender).
    """
    last: uint256 = self.batch_count - 1
    # The tip goes back to batch `header.index - 1`, with its `l2_time` (`batch_l2_time`).
    self.batch_count = header.index
    self.tip_post_root = header.prev_root
    self.tip_queue_end = header.queue_start
    log BatchesReverted(from_index=header.index, to_index=last)

    info: Sequencer = self.sequencers[header.sequencer]
    bond: uint256 = info.bond
    reward: uint256 = bond * CHALLENGER_REWARD_BPS // BPS
    burned: uint256 = bond - reward
    self.sequencers[header.sequencer] = Sequencer(
        bond=0, slashed=True, last_batch_timestamp=info.last_batch_timestamp
    )
    self.total_burned += burned
    log SequencerSlashed(sequencer=header.sequencer, bond=bond, reward=reward, burned=burned)
    log FraudProven(
        batch_index=header.index,
        tx_index=tx_index,
        sequencer=header.sequencer,
        challenger=msg.sender,
        reward=reward,
    )
    if reward > 0:
        raw_call(msg.sender, b"", value=reward)
