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
        paid once. Once the Rollup is frozen (protocol.md section 12):
        the refund of deposits no batch consumed, and each account's exit
        from the frozen state, registered with proofs of its leaves
        during `EXIT_WINDOW_SECONDS` and paid pro rata of what the Bridge
        holds for exits after it.
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
import escape
import smt
import state_keys


# @dev The Rollup: which batches are final, whether it is frozen and at which state.
interface IRollup:
    def is_final(header: batch_header.BatchHeader) -> bool: view
    def frozen_at() -> uint256: view
    def tip_post_root() -> bytes32: view
    def tip_queue_end() -> uint256: view


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


# @dev Bits of a queue entry's packed metadata that hold its timestamp (the rest: `deposited_before`).
TIMESTAMP_BITS: constant(uint256) = 64
MASK64: constant(uint256) = 2**64 - 1


# @dev An account's exit from the frozen state (protocol.md section 12).
struct Exit:
    recipient: address
    claim: uint256
    registered: bool
    paid: bool


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


event DepositRefunded:
    index: indexed(uint256)
    depositor: indexed(address)
    to: indexed(address)
    amount: uint256


event ExitRegistered:
    account: indexed(address)
    recipient: indexed(address)
    equity: int256
    claim: uint256


event ExitPoolFixed:
    pool: uint256
    claims: uint256
    available: uint256


event ExitPaid:
    account: indexed(address)
    recipient: indexed(address)
    claim: uint256
    amount: uint256


# STORAGE #


# @dev The collateral token.
TOKEN: public(immutable(IERC20))


# @dev The Rollup contract.
ROLLUP: public(immutable(IRollup))


# @dev Seconds after the freeze during which accounts register their exits; payouts follow it.
EXIT_WINDOW_SECONDS: public(immutable(uint256))


# @dev The account allowed to queue governance messages (the deployer, then `set_governor`).
governor: public(address)


# @dev Number of entries (deposits, messages, forced transactions) ever queued; the next entry's index.
queue_length: public(uint256)


# @dev The queue hash of entry `i` (zero past the end).
queue_hash: public(HashMap[uint256, bytes32])


# @dev Entry `i`'s L1 block timestamp (low 64 bits) and the sum of the deposits queued before it
#      (the bits above): `queue_timestamp` and `deposited_before` read them.
queue_meta: HashMap[uint256, uint256]


# @dev Who paid each deposit (the caller of `deposit`): its refund goes there.
depositor: public(HashMap[uint256, address])


# @dev Sum of all deposits ever (at most `MAX_TOTAL_DEPOSITS`).
total_deposited: public(uint256)


# @dev Withdrawal keys already paid.
claimed: public(HashMap[bytes32, bool])


# @dev Deposits already refunded, by queue index.
refunded: public(HashMap[uint256, bool])


# @dev Sum of the refunds paid.
refunds_paid: public(uint256)


# @dev Each account's exit.
exits: public(HashMap[address, Exit])


# @dev Sum of the registered exits' claims.
exit_claims: public(uint256)


# @dev What the exits share once the window is over: `min(exit_claims, available)`, fixed once.
exit_pool: public(uint256)


# @dev Whether `exit_pool` is fixed.
exit_pool_fixed: public(bool)


# @dev Sum of the exits paid.
exits_paid: public(uint256)


@deploy
def __init__(token: address, rollup: address, exit_window_seconds: uint256):
    """
    @dev Sets the collateral token, the Rollup and the exit window; the deployer is the governor.
    @param token The collateral ERC-20.
    @param rollup The Rollup contract.
    @param exit_window_seconds Seconds after a freeze during which exits are registered (> 0).
    """
    assert token != empty(address) and rollup != empty(address), "bridge: zero address"
    assert exit_window_seconds > 0, "bridge: zero exit window"
    TOKEN = IERC20(token)
    ROLLUP = IRollup(rollup)
    EXIT_WINDOW_SECONDS = exit_window_seconds
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
    self._enqueue(index, entry)
    self.total_deposited += amount
    self.depositor[index] = msg.sender
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
    frozen_at: uint256 = staticcall ROLLUP.frozen_at()
    if frozen_at != 0:
        # Frozen: what the refunds and the exits' pool are owed stays in the Bridge.
        reserved: uint256 = self._refunds_outstanding()
        if block.timestamp >= frozen_at + EXIT_WINDOW_SECONDS:
            reserved += self._fix_exit_pool() - self.exits_paid
        assert staticcall TOKEN.balanceOf(self) >= amount + reserved, "bridge: withdrawal not covered"
    self.claimed[key] = True
    log WithdrawalClaimed(
        key=key, account=account, nonce=nonce, recipient=l1_recipient, amount=amount, batch_index=header.index
    )
    assert extcall TOKEN.transfer(l1_recipient, amount, default_return_value=True), "bridge: transfer failed"


@external
@view
def queue_timestamp(index: uint256) -> uint256:
    """
    @dev Returns the L1 block timestamp at which entry `index` was queued (zero past the end).
    @param index The queue index.
    @return uint256 The timestamp.
    """
    return self.queue_meta[index] & MASK64


@external
@view
def deposited_before(index: uint256) -> uint256:
    """
    @dev Returns the sum of the deposits queued before entry `index`
         (`total_deposited` at or past the end).
    @param index The queue index.
    @return uint256 The sum.
    """
    return self._deposited_before(index)


@external
@view
def refunds_outstanding() -> uint256:
    """
    @dev Returns what the refunds not claimed yet are owed: zero unless
         frozen, then the deposits at or after the frozen `queue_end`
         less the refunds paid.
    @return uint256 The sum.
    """
    return self._refunds_outstanding()


@external
def claim_refund(index: uint256, to: address, amount: uint256):
    """
    @dev Pays a deposit that no batch consumed back to its depositor
         (the caller of `deposit`), once the Rollup is frozen. Anyone
         may call it; the deposit is named by its queued fields.
    @param index The deposit's queue index (at or after the frozen `queue_end`).
    @param to The L2 account it was for.
    @param amount Its amount.
    """
    assert staticcall ROLLUP.frozen_at() != 0, "bridge: not frozen"
    assert index >= staticcall ROLLUP.tip_queue_end(), "bridge: deposit consumed"
    assert (
        index < self.queue_length and self.queue_hash[index] == keccak256(abi_encode(index, to, amount))
    ), "bridge: not a deposit"
    assert not self.refunded[index], "bridge: already refunded"
    self.refunded[index] = True
    self.refunds_paid += amount
    depositor: address = self.depositor[index]
    log DepositRefunded(index=index, depositor=depositor, to=to, amount=amount)
    assert extcall TOKEN.transfer(depositor, amount, default_return_value=True), "bridge: transfer failed"


@external
def register_exit(recipient: address, account_witness: smt.Witness, markets_witness: smt.Witness) -> uint256:
    """
    @dev Registers the caller's exit from the frozen state, during the
         exit window (protocol.md section 12): the witnesses of its
         Account leaf and of the Markets leaf must check against the
         frozen root (the Rollup's tip). Its claim is its equity there
         (funding settled, positions closed at the marks) if positive,
         else 0. Each account registers once.
    @param recipient The L1 address its payout goes to.
    @param account_witness The witness of the caller's Account leaf.
    @param markets_witness The witness of the Markets leaf.
    @return uint256 The claim.
    """
    frozen_at: uint256 = staticcall ROLLUP.frozen_at()
    assert frozen_at != 0, "bridge: not frozen"
    assert block.timestamp < frozen_at + EXIT_WINDOW_SECONDS, "bridge: exit window closed"
    assert recipient != empty(address), "bridge: zero recipient"
    assert not self.exits[msg.sender].registered, "bridge: already exited"
    root: bytes32 = staticcall ROLLUP.tip_post_root()
    assert (
        account_witness.key == state_keys.account_key(msg.sender) and smt.check(root, account_witness)
    ), "bridge: bad account witness"
    assert (
        markets_witness.key == state_keys.MARKETS_KEY and smt.check(root, markets_witness)
    ), "bridge: bad markets witness"
    assert len(account_witness.value) != 0, "bridge: no account"
    equity: int256 = escape.equity(account_witness.value, markets_witness.value)
    claim: uint256 = 0
    if equity > 0:
        claim = convert(equity, uint256)
    self.exits[msg.sender] = Exit(recipient=recipient, claim=claim, registered=True, paid=False)
    self.exit_claims += claim
    log ExitRegistered(account=msg.sender, recipient=recipient, equity=equity, claim=claim)
    return claim


@external
def pay_exit(account: address) -> uint256:
    """
    @dev Pays a registered exit once the exit window is over: `claim *
         exit_pool // exit_claims` to its recipient, once. Anyone may call
         it. The first payout (or withdrawal claim) after the window
         fixes the pool.
    @param account The exiting account.
    @return uint256 The amount paid.
    """
    frozen_at: uint256 = staticcall ROLLUP.frozen_at()
    assert frozen_at != 0, "bridge: not frozen"
    assert block.timestamp >= frozen_at + EXIT_WINDOW_SECONDS, "bridge: exit window open"
    e: Exit = self.exits[account]
    assert e.registered, "bridge: no exit"
    assert not e.paid, "bridge: exit already paid"
    pool: uint256 = self._fix_exit_pool()
    amount: uint256 = e.claim
    if pool < self.exit_claims:
        amount = e.claim * pool // self.exit_claims
    self.exits[account].paid = True
    self.exits_paid += amount
    log ExitPaid(account=account, recipient=e.recipient, claim=e.claim, amount=amount)
    if amount > 0:
        assert extcall TOKEN.transfer(e.recipient, amount, default_return_value=True), "bridge: transfer failed"
    return amount


@internal
@view
def _deposited_before(index: uint256) -> uint256:
    """
    @dev The sum of the deposits queued before entry `index` (all of them at or past the end).
    """
    if index >= self.queue_length:
        return self.total_deposited
    return self.queue_meta[index] >> TIMESTAMP_BITS


@internal
@view
def _refunds_outstanding() -> uint256:
    """
    @dev What the unclaimed refunds are owed (zero unless frozen; no deposit is taken after it).
    """
    if staticcall ROLLUP.frozen_at() == 0:
        return 0
    return self.total_deposited - self._deposited_before(staticcall ROLLUP.tip_queue_end()) - self.refunds_paid


@internal
def _fix_exit_pool() -> uint256:
    """
    @dev Returns the exits' pool, fixing it the first time (after the
         window): `min(exit_claims, available)`, `available` being the
         Bridge's balance less what the refunds are owed (0 if negative).
    """
    if self.exit_pool_fixed:
        return self.exit_pool
    balance: uint256 = staticcall TOKEN.balanceOf(self)
    owed: uint256 = self._refunds_outstanding()
    available: uint256 = 0
    if balance > owed:
        available = balance - owed
    pool: uint256 = min(available, self.exit_claims)
    self.exit_pool = pool
    self.exit_pool_fixed = True
    log ExitPoolFixed(pool=pool, claims=self.exit_claims, available=available)
    return pool


@internal
def _enqueue(index: uint256, entry: bytes32):
    """
    @dev Appends queue entry `index` with its hash, this block's timestamp and the deposits before
         it. Refused once the Rollup is frozen: no batch will consume it.
    """
    assert staticcall ROLLUP.frozen_at() == 0, "bridge: frozen"
    self.queue_length = index + 1
    self.queue_hash[index] = entry
    self.queue_meta[index] = (self.total_deposited << TIMESTAMP_BITS) | block.timestamp
