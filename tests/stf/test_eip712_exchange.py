"""Every v2 signed structure hashes as a wallet hashes it: eth-account's `encode_typed_data`
(EIP-712 v4, what MetaMask's `eth_signTypedData_v4` signs) gives our digests for Order, Cancel
(a nested struct), Bundle (an array of structs), Price and Liquidate, and a signature made by
eth-account over that typed data recovers to the signer under our rules."""

from __future__ import annotations

from typing import Any

from eth_account import Account as EthAccount
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from sequencer.stf.eip712 import (
    address_of,
    bundle_digest,
    cancel_digest,
    liquidate_digest,
    order_digest,
    price_digest,
    recover_digest,
)
from sequencer.stf.types import Bundle, ChainConfig, Leg, Liquidate, Order, Signature

KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
u8, u16, u64 = st.integers(0, 2**8 - 1), st.integers(0, 2**16 - 1), st.integers(0, 2**64 - 1)
addresses = st.binary(min_size=20, max_size=20)

DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
ORDER_TYPE = [
    {"name": "trader", "type": "address"},
    {"name": "market", "type": "uint16"},
    {"name": "side", "type": "uint8"},
    {"name": "price", "type": "uint64"},
    {"name": "size", "type": "uint64"},
    {"name": "flags", "type": "uint8"},
    {"name": "expiry", "type": "uint64"},
    {"name": "salt", "type": "uint64"},
]
LEG_TYPE = [
    {"name": "market", "type": "uint16"},
    {"name": "side", "type": "uint8"},
    {"name": "price", "type": "uint64"},
    {"name": "size", "type": "uint64"},
]


def wallet_digest(config: ChainConfig, primary: str, types: dict[str, Any], message: dict[str, Any]) -> bytes:
    """The digest eth-account (a wallet) signs for this typed data."""
    typed = {
        "types": {"EIP712Domain": DOMAIN_TYPE, **types},
        "primaryType": primary,
        "domain": {
            "name": "DerivRollup",
            "version": "1",
            "chainId": config.chain_id,
            "verifyingContract": to_checksum_address(config.rollup),
        },
        "message": message,
    }
    signable = encode_typed_data(full_message=typed)
    return bytes(_hash_eip191_message(signable))


def order_message(o: Order) -> dict[str, Any]:
    return {
        "trader": to_checksum_address(o.trader),
        "market": o.market,
        "side": o.side,
        "price": o.price,
        "size": o.size,
        "flags": o.flags,
        "expiry": o.expiry,
        "salt": o.salt,
    }


orders = st.builds(Order, addresses, u16, u8, u64, u64, u8, u64, u64)
configs = st.builds(ChainConfig, st.integers(1, 2**64), addresses)


@settings(max_examples=30, deadline=None)
@given(orders, configs)
def test_order_and_cancel__digests_are_the_wallets(order: Order, config: ChainConfig) -> None:
    assert order_digest(order, config) == wallet_digest(
        config, "Order", {"Order": ORDER_TYPE}, order_message(order)
    )
    cancel_types = {"Cancel": [{"name": "order", "type": "Order"}], "Order": ORDER_TYPE}
    assert cancel_digest(order, config) == wallet_digest(
        config, "Cancel", cancel_types, {"order": order_message(order)}
    )


@settings(max_examples=30, deadline=None)
@given(addresses, st.lists(st.builds(Leg, u16, u8, u64, u64), min_size=1, max_size=4), u64, u64, configs)
def test_bundle__array_of_legs_digest_is_the_wallets(
    trader: bytes, legs: list[Leg], expiry: int, salt: int, config: ChainConfig
) -> None:
    bundle = Bundle(trader, tuple(legs), expiry, salt)
    message = {
        "trader": to_checksum_address(trader),
        "legs": [{"market": g.market, "side": g.side, "price": g.price, "size": g.size} for g in legs],
        "expiry": expiry,
        "salt": salt,
    }
    types = {
        "Bundle": [
            {"name": "trader", "type": "address"},
            {"name": "legs", "type": "Leg[]"},
            {"name": "expiry", "type": "uint64"},
            {"name": "salt", "type": "uint64"},
        ],
        "Leg": LEG_TYPE,
    }
    assert bundle_digest(bundle, config) == wallet_digest(config, "Bundle", types, message)


@settings(max_examples=30, deadline=None)
@given(u16, u64, u64, u64, addresses, addresses, u64, configs)
def test_price_and_liquidate__digests_are_the_wallets(
    market: int,
    mark: int,
    index: int,
    timestamp: int,
    liquidator: bytes,
    account: bytes,
    size: int,
    config: ChainConfig,
) -> None:
    price_types = {
        "Price": [
            {"name": "market", "type": "uint16"},
            {"name": "mark", "type": "uint64"},
            {"name": "index", "type": "uint64"},
            {"name": "timestamp", "type": "uint64"},
        ]
    }
    message = {"market": market, "mark": mark, "index": index, "timestamp": timestamp}
    assert price_digest(market, mark, index, timestamp, config) == wallet_digest(
        config, "Price", price_types, message
    )
    tx = Liquidate(liquidator, account, market, size, timestamp, Signature(0, 0, 0))
    liquidate_types = {
        "Liquidate": [
            {"name": "liquidator", "type": "address"},
            {"name": "account", "type": "address"},
            {"name": "market", "type": "uint16"},
            {"name": "size", "type": "uint64"},
            {"name": "nonce", "type": "uint64"},
        ]
    }
    liquidate_message = {
        "liquidator": to_checksum_address(liquidator),
        "account": to_checksum_address(account),
        "market": market,
        "size": size,
        "nonce": timestamp,
    }
    assert liquidate_digest(tx, config) == wallet_digest(
        config, "Liquidate", liquidate_types, liquidate_message
    )


def test_order_signed_by_a_wallet__recovers_to_the_trader() -> None:
    config = ChainConfig(31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
    order = Order(address_of(KEY), 0, 1, 3_000, 10_000, 1, 0, 42)
    typed = {
        "types": {"EIP712Domain": DOMAIN_TYPE, "Order": ORDER_TYPE},
        "primaryType": "Order",
        "domain": {
            "name": "DerivRollup",
            "version": "1",
            "chainId": config.chain_id,
            "verifyingContract": to_checksum_address(config.rollup),
        },
        "message": order_message(order),
    }
    signed = EthAccount.sign_typed_data(KEY, full_message=typed)
    assert recover_digest(order_digest(order, config), signed.r, signed.s, signed.v) == order.trader
