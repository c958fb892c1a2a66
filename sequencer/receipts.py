"""Signed acknowledgements: the sequencer's word that it logged a transaction.

Every acknowledgement carries an EIP-712 signature by the sequencer's L1 key in the rollup's
domain: over `Receipt(bytes32 txHash,uint64 seq,address sequencer)` for one transaction, over
`BatchReceipt(bytes32 itemsHash,address sequencer)` for a batch of them, and over
`OrderReceipt(bytes32 ordersHash,bytes32 itemsHash,address sequencer)` for placed orders (the
orders it accepted, resting or not, and the fills they made). A receipt that no L1 batch honours
is evidence against that sequencer (DESIGN guarantee 4): anyone can check it with the `verify_*`
functions against the sequencer's bonded address.
"""

from __future__ import annotations

from coincurve import PrivateKey

from sequencer.stf.eip712 import address_of, recover_digest
from sequencer.stf.hashing import keccak
from sequencer.stf.types import ChainConfig

RECEIPT_TYPEHASH = keccak(b"Receipt(bytes32 txHash,uint64 seq,address sequencer)")
"""keccak of the Receipt type string."""

BATCH_RECEIPT_TYPEHASH = keccak(b"BatchReceipt(bytes32 itemsHash,address sequencer)")
"""keccak of the BatchReceipt type string: one signature for every item a batch request acknowledged."""


ORDER_RECEIPT_TYPEHASH = keccak(b"OrderReceipt(bytes32 ordersHash,bytes32 itemsHash,address sequencer)")
"""keccak of the OrderReceipt type string: the orders a request placed and the fills they made."""


def items_hash(items: list[tuple[bytes, int]]) -> bytes:
    """`keccak(txHash_0 ‖ word(seq_0) ‖ txHash_1 ‖ …)` over the acknowledged items, in order."""
    return keccak(b"".join(h + seq.to_bytes(32, "big") for h, seq in items))


def batch_receipt_digest(config: ChainConfig, items: list[tuple[bytes, int]], sequencer: bytes) -> bytes:
    """The EIP-712 digest of a batch receipt."""
    struct = keccak(BATCH_RECEIPT_TYPEHASH + items_hash(items) + bytes(12) + sequencer)
    return keccak(b"\x19\x01" + config.domain_separator + struct)


def verify_batch_receipt(
    config: ChainConfig, items: list[tuple[bytes, int]], sequencer: bytes, signature: bytes
) -> bool:
    """True iff `signature` is `sequencer`'s batch receipt for exactly these (hash, seq) items."""
    return _recovers(batch_receipt_digest(config, items, sequencer), sequencer, signature)


def order_receipt_digest(
    config: ChainConfig, orders: list[bytes], items: list[tuple[bytes, int]], sequencer: bytes
) -> bytes:
    """The EIP-712 digest of an order receipt: `ordersHash = keccak(digest_0 ‖ digest_1 ‖ …)` over
    the placed orders' digests, `itemsHash` over their fills' (hash, seq), each in order."""
    orders_hash = keccak(b"".join(orders))
    struct = keccak(ORDER_RECEIPT_TYPEHASH + orders_hash + items_hash(items) + bytes(12) + sequencer)
    return keccak(b"\x19\x01" + config.domain_separator + struct)


def verify_order_receipt(
    config: ChainConfig,
    orders: list[bytes],
    items: list[tuple[bytes, int]],
    sequencer: bytes,
    signature: bytes,
) -> bool:
    """True iff `signature` is `sequencer`'s order receipt for exactly these orders and fills."""
    return _recovers(order_receipt_digest(config, orders, items, sequencer), sequencer, signature)


def receipt_digest(config: ChainConfig, tx_hash: bytes, seq: int, sequencer: bytes) -> bytes:
    """The EIP-712 digest of a receipt."""
    struct = keccak(RECEIPT_TYPEHASH + tx_hash + seq.to_bytes(32, "big") + bytes(12) + sequencer)
    return keccak(b"\x19\x01" + config.domain_separator + struct)


def sign_receipt(private_key: bytes, config: ChainConfig, tx_hash: bytes, seq: int) -> bytes:
    """The 65-byte `r || s || v` signature of a receipt by the sequencer's key."""
    return ReceiptSigner(private_key, config).sign(tx_hash, seq)


class ReceiptSigner:
    """Signs receipts with one key; the key object and its address are derived once (deriving
    them per receipt cost more than the signature itself)."""

    def __init__(self, private_key: bytes, config: ChainConfig) -> None:
        self._key = PrivateKey(private_key)
        self.address = address_of(private_key)
        self.config = config

    def sign(self, tx_hash: bytes, seq: int) -> bytes:
        """The 65-byte `r || s || v` signature of the receipt for (`tx_hash`, `seq`)."""
        return self._sign(receipt_digest(self.config, tx_hash, seq, self.address))

    def sign_batch(self, items: list[tuple[bytes, int]]) -> bytes:
        """One signature acknowledging every (hash, seq) of a batch request, in order."""
        return self._sign(batch_receipt_digest(self.config, items, self.address))

    def sign_orders(self, orders: list[bytes], items: list[tuple[bytes, int]]) -> bytes:
        """One signature acknowledging placed orders (by digest) and their fills, in order."""
        return self._sign(order_receipt_digest(self.config, orders, items, self.address))

    def _sign(self, digest: bytes) -> bytes:
        sig = self._key.sign_recoverable(digest, hasher=None)  # libsecp256k1: low s
        return sig[:64] + bytes((sig[64] + 27,))


def verify_receipt(config: ChainConfig, tx_hash: bytes, seq: int, sequencer: bytes, signature: bytes) -> bool:
    """True iff `signature` is `sequencer`'s receipt for (`tx_hash`, `seq`)."""
    return _recovers(receipt_digest(config, tx_hash, seq, sequencer), sequencer, signature)


def _recovers(digest: bytes, signer: bytes, signature: bytes) -> bool:
    if len(signature) != 65:
        return False
    r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    return recover_digest(digest, r, s, v) == signer
