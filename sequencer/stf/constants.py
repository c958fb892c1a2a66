"""Constants of the protocol (docs/protocol.md section 1). Units are in the names."""

from __future__ import annotations

from typing import Final

PROTOCOL_VERSION: Final = 1
"""Version of docs/protocol.md this package implements."""

EIP712_NAME: Final = "DerivRollup"
"""EIP-712 domain name."""

EIP712_VERSION: Final = "1"
"""EIP-712 domain version."""

SMT_DEPTH_BITS: Final = 256
"""Bits of a state key (depth of the sparse Merkle tree)."""

SMT_DEPTH: Final = SMT_DEPTH_BITS
"""Alias of `SMT_DEPTH_BITS` under the protocol's name."""

EMPTY: Final = bytes(32)
"""Hash of an empty subtree; also the genesis state root."""

LEAF_TAG: Final = b"\x01"
"""First byte of a state-leaf preimage."""

TX_LEAF_TAG: Final = b"\x00"
"""First byte of a transaction-tree leaf preimage."""

ROOT_LEAF_TAG: Final = b"\x01"
"""First byte of a state-root-tree leaf preimage."""

MAX_TX_BYTES: Final = 512
"""Longest encoded transaction, in bytes."""

MAX_BATCH_TXS: Final = 256
"""Most transactions in one batch."""

MAX_WITNESSES: Final = 8
"""Most state leaves one transaction touches."""

MAX_VALUE_BYTES: Final = 256
"""Longest encoded leaf value, in bytes."""

MAX_TOTAL_DEPOSITS: Final = 2**128 - 1
"""Cap on the sum of all deposits ever, in collateral base units."""

SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""Order of the secp256k1 group."""

SECP256K1_N_HALF: Final = SECP256K1_N // 2
"""Highest accepted signature `s` (no malleability)."""

# Leaf kinds (protocol section 2, "Keys and values").
KIND_GLOBAL: Final = b"\x00"
"""Key kind of the Global leaf."""

KIND_ACCOUNT: Final = b"\x01"
"""Key kind of an Account leaf."""

KIND_WITHDRAWAL: Final = b"\x03"
"""Key kind of a Withdrawal leaf."""

# Transaction type bytes and exact encoded lengths (protocol section 3).
TX_TYPE_DEPOSIT: Final = 0x01
"""Type byte of a Deposit."""

TX_TYPE_TRANSFER: Final = 0x02
"""Type byte of a Transfer."""

TX_TYPE_WITHDRAW: Final = 0x03
"""Type byte of a Withdraw."""

DEPOSIT_TX_BYTES: Final = 61
"""Length of an encoded Deposit."""

SIGNED_TX_BYTES: Final = 146
"""Length of an encoded Transfer or Withdraw."""

ADDRESS_BYTES: Final = 20
"""Length of an address."""

WORD_BYTES: Final = 32
"""Length of an ABI word."""

UINT64_MAX: Final = 2**64 - 1
"""Largest nonce / queue index that fits the 8-byte fields."""

UINT256_MAX: Final = 2**256 - 1
"""Largest 32-byte word."""
