"""Signed acknowledgements: the sequencer's word that it logged a transaction.

Every acknowledgement carries an EIP-712 signature by the sequencer's L1 key over
`Receipt(bytes32 txHash,uint64 seq,address sequencer)` in the rollup's domain. A receipt that
no L1 batch honours is evidence against that sequencer (DESIGN guarantee 4): anyone can check it
with `verify_receipt` against the sequencer's bonded address.
"""

from __future__ import annotations

from sequencer.stf.eip712 import address_of, recover_digest, sign_digest
from sequencer.stf.hashing import keccak
from sequencer.stf.types import ChainConfig

RECEIPT_TYPEHASH = keccak(b"Receipt(bytes32 txHash,uint64 seq,address sequencer)")
"""keccak of the Receipt type string."""


def receipt_digest(config: ChainConfig, tx_hash: bytes, seq: int, sequencer: bytes) -> bytes:
    """The EIP-712 digest of a receipt."""
    struct = keccak(RECEIPT_TYPEHASH + tx_hash + seq.to_bytes(32, "big") + bytes(12) + sequencer)
    return keccak(b"\x19\x01" + config.domain_separator + struct)


def sign_receipt(private_key: bytes, config: ChainConfig, tx_hash: bytes, seq: int) -> bytes:
    """The 65-byte `r || s || v` signature of a receipt by the sequencer's key."""
    r, s, v = sign_digest(private_key, receipt_digest(config, tx_hash, seq, address_of(private_key)))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v,))


def verify_receipt(config: ChainConfig, tx_hash: bytes, seq: int, sequencer: bytes, signature: bytes) -> bool:
    """True iff `signature` is `sequencer`'s receipt for (`tx_hash`, `seq`)."""
    if len(signature) != 65:
        return False
    r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    return recover_digest(receipt_digest(config, tx_hash, seq, sequencer), r, s, v) == sequencer
