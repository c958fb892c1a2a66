# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Bridge
@custom:contract-name Bridge
@license MIT
@notice The L1 side of the rollup's money and governance
        (docs/protocol.md section 6): one queue that batches consume in
        order (each entry's hash and L1 timestamp) holding deposits, the
        governor's messages and users' forced transactions (a signed
        Transfer, Withdraw or Cancel that anyone may queue, so that no
        sequencer can censor it), and the payment of withdrawals proven
        against the post-state root of a FINAL batch, each withdrawal key
        paid once.
@dev The collateral token is pulled with `transferFrom` on deposit and
     paid with `transfer` on claim. A deposit's queue hash is
     `keccak(word(i) || word(to) || word(amount))`, a message's
     `keccak(word(i) || word(2**256 - 1) || keccak(payload))`, a forced
     transaction's `keccak(word(i) || word(2**256 - 2) || keccak(tx))`:
     the middle word of a message or forced transaction is no address and
     the two tags differ, so no two kinds collide. All external functions
     are non-reentrant.
"""

from ethereum.ercs import IERC20

import batch_header
import smt
import state_keys


# @dev The Rollup: which batches are final.
interface IRollup:
    def is_final(header: batch_header.BatchHeader) -> bool: view


# @dev Cap on the sum of all deposits ever (so no L2 balance can overflow).
MAX_TOTAL_DEPOSITS: constant(uint256) = 2**128 - 1


# @dev Longest message payload: an L1Message transaction (`type || queue_index(8) ||
#      payload`) is at most MAX_TX_BYTES (1024) bytes.
MAX_PAYLOAD_BYTES: constant(uint256) = 1015


# @dev The middle word of a message's queue hash (in place of a deposit's recipient).
MESSAGE_TAG: constant(uint256) = max_value(uint256)


# @dev Longest forced transaction: a ForcedTx (`type || queue_index(8) || tx`) is at most
#      MAX_TX_BYTES (1024) bytes.
MAX_FORCED_TX_BYTES: constant(uint256) = 1015


# @dev What `force_tx` accepts to decode, so that a longer tx is refused with a reason
#      rather than by the ABI decoder.
FORCED_TX_INPUT_BYTES: constant(uint256) = 2048


# @dev The middle word of a forced transaction's queue hash (neither an address nor MESSAGE_TAG).
FORCED_TAG: constant(uint256) = max_value(uint256) - 1


# EVENTS #


event Deposited:
    index: indexed(uint256)
    sender: indexed(address)
    to: indexed(address)
    amount: uint256
    queue_hash: bytes32
    timestamp: uint256


event MessageQueued:
    index: indexed(uint256)
    payload: Bytes[MAX_PAYLOAD_BYTES]
    queue_hash: bytes32
    timestamp: uint256


event ForcedTxQueued:
    index: indexed(uint256)
    sender: indexed(address)
    signed_tx: Bytes[FORCED_TX_INPUT_BYTES]  # at most MAX_FORCED_TX_BYTES (checked)
    queue_hash: bytes32
    timestamp: uint256


event GovernorChanged:
    previous: indexed(address)
    governor: indexed(address)


event WithdrawalClaimed:
    key: indexed(bytes32)
    account: indexed(address)
    nonce: uint256
    recipient: indexed(address)
    amount: uint256
    batch_index: uint256


# STORAGE #


# @dev The collateral token.
TOKEN: public(immutable(IERC20))


# @dev The Rollup contract.
ROLLUP: public(immutable(IRollup))


# @dev The account allowed to queue governance messages (the deployer, then `set_governor`).
governor: public(address)


# @dev Number of entries (deposits, messages, forced transactions) ever queued; the next entry's index.
queue_length: public(uint256)


# @dev The queue hash of entry `i` (zero past the end).
queue_hash: public(HashMap[uint256, bytes32])


# @dev L1 block timestamp at which entry `i` was queued (zero past the end).
queue_timestamp: public(HashMap[uint256, uint256])


# @dev Sum of all deposits ever (at most `MAX_TOTAL_DEPOSITS`).
total_deposited: public(uint256)


# @dev Withdrawal keys already paid.
claimed: public(HashMap[bytes32, bool])


@deploy
def __init__(token: address, rollup: address):
    """
    @dev Sets the collateral token and the Rollup; the deployer is the governor.
    @param token The collateral ERC-20.
    @param rollup The Rollup contract.
    """
    assert token != empty(address) and rollup != empty(address), "bridge: zero address"
    TOKEN = IERC20(token)
    ROLLUP = IRollup(rollup)
    self.governor = msg.sender
    log GovernorChanged(previous=empty(address), governor=msg.sender)


@external
def deposit(to: address, amount: uint256) -> uint256:
    """
    @dev Pulls `amount` collateral from the caller and queues a deposit
         crediting the L2 account `to`.
    @param to The L2 account credited.
    @param amount The amount, in the token's smallest unit (> 0).
    @return uint256 The deposit's queue index.
    """
    assert amount > 0, "bridge: zero amount"
    # nobody can sign for the zero address: its collateral could never move again
    assert to != empty(address), "bridge: zero recipient"
    assert amount <= MAX_TOTAL_DEPOSITS - self.total_deposited, "bridge: deposit cap"
    index: uint256 = self.queue_length
    entry: bytes32 = keccak256(abi_encode(index, to, amount))
    self.total_deposited += amount
    self._enqueue(index, entry)
    log Deposited(
        index=index, sender=msg.sender, to=to, amount=amount, queue_hash=entry, timestamp=block.timestamp
    )
    assert extcall TOKEN.transferFrom(msg.sender, self, amount, default_return_value=True), "bridge: transfer failed"
    return index


@external
def send_message(payload: Bytes[MAX_PAYLOAD_BYTES]) -> uint256:
    """
    @dev Queues a governance message (an L1Message transaction on L2,
         protocol.md section 3). Governor only.
    @param payload The message, `kind(1) || body`, 1 to 1015 bytes. The
           Bridge does not read it: an invalid payload is consumed on L2
           and changes nothing else.
    @return uint256 The message's queue index.
    """
    assert msg.sender == self.governor, "bridge: not governor"
    assert len(payload) != 0, "bridge: empty payload"
    index: uint256 = self.queue_length
    entry: bytes32 = keccak256(abi_encode(index, MESSAGE_TAG, keccak256(payload)))
    self._enqueue(index, entry)
    log MessageQueued(index=index, payload=payload, queue_hash=entry, timestamp=block.timestamp)
    return index


@external
def force_tx(signed_tx: Bytes[FORCED_TX_INPUT_BYTES]) -> uint256:
    """
    @dev Queues a user's signed rollup transaction (a ForcedTx on L2,
         protocol.md section 3): batches must consume it in queue order,
         within the Rollup's forced-inclusion deadline. Anyone may call it.
    @param signed_tx The canonical bytes of a signed Transfer, Withdraw or
           Cancel, 1 to 1015 bytes. The Bridge does not read them: bytes that
           do not decode to a Transfer, Withdraw or Cancel that applies are
           consumed on L2 and change nothing else.
    @return uint256 The forced transaction's queue index.
    """
    assert len(signed_tx) != 0, "bridge: empty tx"
    assert len(signed_tx) <= MAX_FORCED_TX_BYTES, "bridge: tx too long"
    index: uint256 = self.queue_length
    entry: bytes32 = keccak256(abi_encode(index, FORCED_TAG, keccak256(signed_tx)))
    self._enqueue(index, entry)
    log ForcedTxQueued(
        index=index, sender=msg.sender, signed_tx=signed_tx, queue_hash=entry, timestamp=block.timestamp
    )
    return index


@external
def set_governor(new_governor: address):
    """
    @dev Hands the governor role over (to a timelock or a multisig in
         production). Governor only.
    @param new_governor The next governor (not the zero address).
    """
    assert msg.sender == self.governor, "bridge: not governor"
    assert new_governor != empty(address), "bridge: zero address"
    self.governor = new_governor
    log GovernorChanged(previous=msg.sender, governor=new_governor)


@external
def claim_withdrawal(
    header: batch_header.BatchHeader,
    account: address,
    nonce: uint256,
    l1_recipient: address,
    amount: uint256,
    witness: smt.Witness,
):
    """
    @dev Pays a withdrawal proven in the post-state of a final batch: the
         witness must check the Withdrawal leaf `(account, nonce)` with
         value `word(l1_recipient) || word(amount)` against
         `header.post_root`. Each withdrawal key is paid once.
    @param header A final batch's header.
    @param account The L2 account that withdrew.
    @param nonce The nonce of its Withdraw transaction.
    @param l1_recipient The L1 recipient signed in the Withdraw.
    @param amount The amount withdrawn.
    @param witness The witness of the Withdrawal leaf against `header.post_root`.
    """
    assert staticcall ROLLUP.is_final(header), "bridge: batch not final"
    key: bytes32 = state_keys.withdrawal_key(account, nonce)
    assert witness.key == key, "bridge: bad witness"
    assert witness.terminal == smt.TERMINAL_LEAF, "bridge: bad witness"
    assert witness.value == abi_encode(l1_recipient, amount), "bridge: bad witness"
    assert smt.check(header.post_root, witness), "bridge: bad witness"
    assert not self.claimed[key], "bridge: already claimed"
    self.claimed[key] = True
    log WithdrawalClaimed(
        key=key, account=account, nonce=nonce, recipient=l1_recipient, amount=amount, batch_index=header.index
    )
    assert extcall TOKEN.transfer(l1_recipient, amount, default_return_value=True), "bridge: transfer failed"


@internal
def _enqueue(index: uint256, entry: bytes32):
    """
    @dev Appends queue entry `index` with its hash and this block's timestamp.
    """
    self.queue_length = index + 1
    self.queue_hash[index] = entry
    self.queue_timestamp[index] = block.timestamp
