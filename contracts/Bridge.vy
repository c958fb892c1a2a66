# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Bridge
@custom:contract-name Bridge
@license MIT
@notice The L1 side of the rollup's money (docs/protocol.md section 6):
        the deposit queue that batches consume in order (each entry's
        hash and L1 timestamp), and the payment of withdrawals proven
        against the post-state root of a FINAL batch, each withdrawal
        key paid once.
@dev The collateral token is pulled with `transferFrom` on deposit and
     paid with `transfer` on claim. All external functions are
     non-reentrant.
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


# EVENTS #


event Deposited:
    index: indexed(uint256)
    sender: indexed(address)
    to: indexed(address)
    amount: uint256
    deposit_hash: bytes32
    timestamp: uint256


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


# @dev Number of deposits ever queued; the next deposit's index.
deposit_count: public(uint256)


# @dev `keccak(word(i) || word(to) || word(amount))` of deposit `i` (zero past the end).
deposit_hash: public(HashMap[uint256, bytes32])


# @dev L1 block timestamp at which deposit `i` was queued (zero past the end).
deposit_timestamp: public(HashMap[uint256, uint256])


# @dev Sum of all deposits ever (at most `MAX_TOTAL_DEPOSITS`).
total_deposited: public(uint256)


# @dev Withdrawal keys already paid.
claimed: public(HashMap[bytes32, bool])


@deploy
def __init__(token: address, rollup: address):
    """
    @dev Sets the collateral token and the Rollup.
    @param token The collateral ERC-20.
    @param rollup The Rollup contract.
    """
    assert token != empty(address) and rollup != empty(address), "bridge: zero address"
    TOKEN = IERC20(token)
    ROLLUP = IRollup(rollup)


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
    index: uint256 = self.deposit_count
    entry: bytes32 = keccak256(abi_encode(index, to, amount))
    self.total_deposited += amount
    self.deposit_count = index + 1
    self.deposit_hash[index] = entry
    self.deposit_timestamp[index] = block.timestamp
    log Deposited(
        index=index, sender=msg.sender, to=to, amount=amount, deposit_hash=entry, timestamp=block.timestamp
    )
    assert extcall TOKEN.transferFrom(msg.sender, self, amount, default_return_value=True), "bridge: transfer failed"
    return index


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
