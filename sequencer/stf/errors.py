"""The error hierarchy of the state machine.

`RollupError` is the root of every error our packages raise on purpose. `InvalidTransaction`
families carry a `code` (protocol section 7) so the API maps a family to one HTTP status;
`InvalidBatch` says where a batch stops matching its commitments.
"""

from __future__ import annotations


class RollupError(Exception):
    """Root of the errors of the rollup."""

    code = "internal"
    """Machine-readable error code (protocol section 7)."""


class InvalidTransaction(RollupError):
    """A transaction breaks a rule: inside a batch it is a no-op, at the API it is refused."""

    code = "invalid_transaction"


class DecodeError(InvalidTransaction):
    """The bytes do not decode to a transaction (unknown type, wrong length, bad field)."""

    code = "malformed"


class BadSignature(InvalidTransaction):
    """The signature is invalid, malleable, or not by the sender."""

    code = "bad_signature"

    def __init__(self, account: bytes) -> None:
        super().__init__(f"signature is not a valid signature by 0x{account.hex()}")
        self.account = account
        """The claimed signer (`from`)."""


class BadNonce(InvalidTransaction):
    """The nonce is not the account's next one."""

    code = "bad_nonce"

    def __init__(self, account: bytes, expected: int, got: int) -> None:
        super().__init__(f"nonce of 0x{account.hex()} is {expected}, got {got}")
        self.account = account
        """The sender."""
        self.expected = expected
        """The account's next nonce."""
        self.got = got
        """The transaction's nonce."""


class InsufficientBalance(InvalidTransaction):
    """The amount is above the sender's collateral."""

    code = "insufficient_balance"

    def __init__(self, account: bytes, required: int, available: int) -> None:
        super().__init__(f"0x{account.hex()} needs {required}, has {available}")
        self.account = account
        """The sender."""
        self.required = required
        """The amount asked for."""
        self.available = available
        """The sender's collateral."""


class InvalidAmount(InvalidTransaction):
    """The amount is zero or above `MAX_TOTAL_DEPOSITS`."""

    code = "invalid_amount"

    def __init__(self, amount: int) -> None:
        super().__init__(f"invalid amount {amount}")
        self.amount = amount
        """The refused amount."""


class InvalidRecipient(InvalidTransaction):
    """A withdrawal to the zero address (the L1 payout would lock the funds)."""

    code = "invalid_recipient"

    def __init__(self, account: bytes) -> None:
        super().__init__(f"withdrawal from 0x{account.hex()} to the zero address")
        self.account = account
        """The sender."""


class SelfTransfer(InvalidTransaction):
    """A transfer from an account to itself."""

    code = "self_transfer"

    def __init__(self, account: bytes) -> None:
        super().__init__(f"transfer from 0x{account.hex()} to itself")
        self.account = account
        """The sender (and recipient)."""


class BadDeposit(InvalidTransaction):
    """A deposit out of queue order, beyond the batch's `queue_end`, or not matching L1."""

    code = "bad_deposit"

    def __init__(self, queue_index: int, reason: str) -> None:
        super().__init__(f"deposit {queue_index}: {reason}")
        self.queue_index = queue_index
        """The deposit's queue index."""
        self.reason = reason
        """Which deposit rule it breaks."""


class WithdrawalExists(InvalidTransaction):
    """The withdrawal leaf `(account, nonce)` is already written."""

    code = "withdrawal_exists"

    def __init__(self, account: bytes, nonce: int) -> None:
        super().__init__(f"withdrawal (0x{account.hex()}, {nonce}) exists")
        self.account = account
        """The sender."""
        self.nonce = nonce
        """The withdrawal's nonce."""


class InvalidBatch(RollupError):
    """A batch does not match what re-executing it gives."""

    code = "invalid_batch"

    def __init__(self, reason: str, tx_index: int | None = None) -> None:
        where = "" if tx_index is None else f" at tx {tx_index}"
        super().__init__(f"invalid batch: {reason}{where}")
        self.reason = reason
        """What mismatched (one of the `REASON_*` strings of `transition`)."""
        self.tx_index = tx_index
        """Index of the first transaction whose post root mismatches, else None."""
