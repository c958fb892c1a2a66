"""Constants of the protocol (docs/protocol.md section 1). Units are in the names."""

from __future__ import annotations

from typing import Final

PROTOCOL_VERSION: Final = 2
"""Version of docs/protocol.md this package implements."""

EIP712_NAME: Final = "DerivRollup"
"""EIP-712 domain name."""

EIP712_VERSION: Final = "1"
"""EIP-712 domain version."""

SMT_DEPTH_BITS: Final = 256
"""Bits of a state key (depth of the sparse Merkle tree)."""

SMT_DEPTH: Final = SMT_DEPTH_BITS
"""Alias of `SMT_DEPTH_BITS` under the protocol's name."""

MAX_SIBLINGS: Final = 80
"""Most non-empty siblings on one witness path."""

EMPTY: Final = bytes(32)
"""Hash of an empty subtree; also the genesis state root."""

LEAF_TAG: Final = b"\x01"
"""First byte of a state-leaf preimage."""

TX_LEAF_TAG: Final = b"\x00"
"""First byte of a transaction-tree leaf preimage."""

ROOT_LEAF_TAG: Final = b"\x01"
"""First byte of a state-root-tree leaf preimage."""

MAX_TX_BYTES: Final = 1024
"""Longest encoded transaction, in bytes."""

MAX_BATCH_TXS: Final = 256
"""Most transactions in one batch."""

MAX_WITNESSES: Final = 12
"""Most state leaves one transaction touches."""

MAX_VALUE_BYTES: Final = 2048
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

KIND_MARKETS: Final = b"\x02"
"""Key kind of the Markets leaf (every market's record)."""

KIND_WITHDRAWAL: Final = b"\x03"
"""Key kind of a Withdrawal leaf."""

KIND_ORDER: Final = b"\x04"
"""Key kind of an Order leaf (fill state of an order or bundle)."""

KIND_INSURANCE: Final = b"\x05"
"""Key kind of the Insurance leaf."""

KIND_ORACLE: Final = b"\x06"
"""Key kind of the Oracle leaf (the price committee)."""

# Transaction type bytes and exact encoded lengths (protocol section 3).
TX_TYPE_DEPOSIT: Final = 0x01
"""Type byte of a Deposit."""

TX_TYPE_TRANSFER: Final = 0x02
"""Type byte of a Transfer."""

TX_TYPE_WITHDRAW: Final = 0x03
"""Type byte of a Withdraw."""

TX_TYPE_L1_MESSAGE: Final = 0x04
"""Type byte of an L1Message (a governance message from the L1 queue)."""

TX_TYPE_ORACLE_UPDATE: Final = 0x05
"""Type byte of an OracleUpdate."""

TX_TYPE_FUNDING: Final = 0x06
"""Type byte of a Funding step."""

TX_TYPE_FILL: Final = 0x07
"""Type byte of a Fill."""

TX_TYPE_CANCEL: Final = 0x08
"""Type byte of a Cancel."""

TX_TYPE_LIQUIDATE: Final = 0x09
"""Type byte of a Liquidate."""

TX_TYPE_DELEVERAGE: Final = 0x0A
"""Type byte of a Deleverage (auto-deleveraging)."""

TX_TYPE_BUNDLE_FILL: Final = 0x0B
"""Type byte of a BundleFill."""

TX_TYPE_FORCED: Final = 0x0C
"""Type byte of a ForcedTx (a user transaction forced through the L1 queue)."""

DEPOSIT_TX_BYTES: Final = 61
"""Length of an encoded Deposit."""

SIGNED_TX_BYTES: Final = 146
"""Length of an encoded Transfer or Withdraw."""

SIGNATURE_BYTES: Final = 65
"""An encoded signature: r(32) || s(32) || v(1)."""

ORDER_BYTES: Final = 56
"""An encoded order: trader, market, side, price, size, flags, expiry, salt."""

LEG_BYTES: Final = 19
"""An encoded bundle leg: market, side, price, size."""

SIGNED_ORDER_BYTES: Final = ORDER_BYTES + SIGNATURE_BYTES
"""An order with its signature."""

FILL_TX_BYTES: Final = 1 + 2 * SIGNED_ORDER_BYTES + 8
"""Length of an encoded Fill."""

CANCEL_TX_BYTES: Final = 1 + SIGNED_ORDER_BYTES
"""Length of an encoded Cancel."""

LIQUIDATE_TX_BYTES: Final = 124
"""Length of an encoded Liquidate."""

DELEVERAGE_TX_BYTES: Final = 51
"""Length of an encoded Deleverage: type, account, counterparty, market, nonce (the account's)."""

FUNDING_TX_BYTES: Final = 11
"""Length of an encoded Funding: type, market, since (the period it settles from)."""

PRICE_ENTRY_BYTES: Final = 24 + SIGNATURE_BYTES
"""One signed price of an OracleUpdate: mark, index, timestamp, signature."""

ORACLE_TX_HEADER_BYTES: Final = 4
"""Type, market, count."""

BUNDLE_TX_HEADER_BYTES: Final = 38
"""Type, trader, expiry, salt, count."""

BUNDLE_LEG_TX_BYTES: Final = LEG_BYTES + SIGNED_ORDER_BYTES
"""What each leg adds to a BundleFill: the leg and its maker's signed order."""

L1_MESSAGE_TX_HEADER_BYTES: Final = 9
"""Type and queue index of an L1Message."""

FORCED_TX_HEADER_BYTES: Final = 9
"""Type and queue index of a ForcedTx."""

ADDRESS_BYTES: Final = 20
"""Length of an address."""

WORD_BYTES: Final = 32
"""Length of an ABI word."""

UINT64_MAX: Final = 2**64 - 1
"""Largest nonce / queue index that fits the 8-byte fields."""

UINT256_MAX: Final = 2**256 - 1
"""Largest 32-byte word."""

INT128_MIN: Final = -(2**127)
"""Least value of a signed 128-bit field (`funding_index`)."""

INT128_MAX: Final = 2**127 - 1
"""Largest value of a signed 128-bit field."""

MESSAGE_TAG: Final = 2**256 - 1
"""Middle word of a governance message's queue hash (no address word equals it)."""

FORCED_TAG: Final = 2**256 - 2
"""Middle word of a forced transaction's queue hash (no address word, nor MESSAGE_TAG, equals it)."""

# Exchange limits (protocol section 1).
MAX_MARKETS: Final = 16
"""Most markets."""

MAX_POSITIONS: Final = 8
"""Most open positions of one account."""

MAX_LEGS: Final = 4
"""Most legs of a bundle."""

MAX_COMMITTEE: Final = 15
"""Most oracle committee members."""

MAX_PRICE_SIGNATURES: Final = 11
"""Most signed prices in one OracleUpdate."""

BPS: Final = 10_000
"""Basis points in one whole."""

MAX_FEE_BPS: Final = 1_000
"""Highest maker or taker fee a market may charge."""

MARKET_RECORD_BYTES: Final = 128
"""Bytes of one market's record in the Markets leaf."""

ACCOUNT_HEAD_BYTES: Final = 64
"""Bytes of an account value before its positions (collateral, nonce)."""

POSITION_BYTES: Final = 128
"""Bytes of one position record: market, size, open notional, funding snapshot."""

# Order sides and flags (protocol section 3).
SIDE_BUY: Final = 0
"""Side byte of a buy."""

SIDE_SELL: Final = 1
"""Side byte of a sell."""

FLAG_POST_ONLY: Final = 1
"""Order flag: only ever a maker."""

FLAG_REDUCE_ONLY: Final = 2
"""Order flag: may only shrink the trader's position."""

FLAG_IOC: Final = 4
"""Order flag: immediate or cancel (never a maker)."""

KNOWN_FLAGS: Final = FLAG_POST_ONLY | FLAG_REDUCE_ONLY | FLAG_IOC
"""Every flag bit an order may use."""

# Governance payload kinds (protocol section 3, L1Message).
MSG_SET_MARKET: Final = 0x01
"""Payload kind: list a market or change its parameters."""

MSG_SET_COMMITTEE: Final = 0x02
"""Payload kind: set the oracle committee."""

SET_MARKET_PAYLOAD_BYTES: Final = 53
"""Length of a SetMarket payload."""

MAX_MESSAGE_PAYLOAD_BYTES: Final = MAX_TX_BYTES - L1_MESSAGE_TX_HEADER_BYTES
"""Longest governance payload (1015 bytes)."""

MAX_FORCED_TX_BYTES: Final = MAX_TX_BYTES - FORCED_TX_HEADER_BYTES
"""Longest inner transaction of a ForcedTx (1015 bytes)."""

TX_TYPE_NAMES: Final = {
    TX_TYPE_DEPOSIT: "deposit",
    TX_TYPE_TRANSFER: "transfer",
    TX_TYPE_WITHDRAW: "withdraw",
    TX_TYPE_L1_MESSAGE: "l1_message",
    TX_TYPE_ORACLE_UPDATE: "oracle_update",
    TX_TYPE_FUNDING: "funding",
    TX_TYPE_FILL: "fill",
    TX_TYPE_CANCEL: "cancel",
    TX_TYPE_LIQUIDATE: "liquidate",
    TX_TYPE_DELEVERAGE: "deleverage",
    TX_TYPE_BUNDLE_FILL: "bundle_fill",
    TX_TYPE_FORCED: "forced",
}
"""Each transaction type byte's name (logs, metrics, the demo's summary)."""
