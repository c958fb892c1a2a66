"""Withdrawal claims: the witness a user sends to `Bridge.claim_withdrawal`, built from L1 data.

Anyone can build it without trusting a sequencer: derive the chain from L1 (`sequencer.stf.chain`),
take the state after the batch that holds the withdrawal, and prove the Withdrawal leaf against
that batch's post root (protocol sections 2 and 6).
"""

from __future__ import annotations

from dataclasses import dataclass

from sequencer.stf.chain import Chain
from sequencer.stf.errors import RollupError
from sequencer.stf.keys import withdrawal_key
from sequencer.stf.smt import Witness
from sequencer.stf.state import get_withdrawal, state_root
from sequencer.stf.types import BatchHeader


class WithdrawalNotFound(RollupError):
    """No batch on L1 (as derived) holds this withdrawal."""

    code = "not_found"


@dataclass(frozen=True)
class WithdrawalClaim:
    """Arguments of `Bridge.claim_withdrawal`."""

    header: BatchHeader
    account: bytes
    nonce: int
    l1_recipient: bytes
    amount: int
    witness: Witness


def build_withdrawal_claim(
    chain: Chain, account: bytes, nonce: int, batch_index: int | None = None
) -> WithdrawalClaim:
    """Prove withdrawal `(account, nonce)` against the post root of a verified batch.

    By default the latest verified batch is used (its post root holds every earlier withdrawal
    too, since leaves are never deleted); pass `batch_index` to prove against an older one.
    """
    if chain.valid_count == 0:
        raise WithdrawalNotFound("no verified batch on L1 yet")
    index = chain.valid_count - 1 if batch_index is None else batch_index
    if index >= chain.valid_count:
        raise WithdrawalNotFound(f"batch {index} is not verified")
    state = chain.state if index == chain.valid_count - 1 else chain.pre_state_of(index + 1)
    header = chain.batches[index].header
    if state_root(state) != header.post_root:
        raise RollupError(f"derived root of batch {index} differs from L1: refusing to build a claim")
    found = get_withdrawal(state, account, nonce)
    if found is None:
        raise WithdrawalNotFound(f"no withdrawal (0x{account.hex()}, {nonce}) in batch {index}")
    recipient, amount = found
    return WithdrawalClaim(
        header=header,
        account=account,
        nonce=nonce,
        l1_recipient=recipient,
        amount=amount,
        witness=state.tree.witness(withdrawal_key(account, nonce)),
    )
