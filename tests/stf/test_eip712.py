"""EIP-712 signatures: agreement with eth-account (what wallets do) and the validity rules."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from eth_account import Account as EthAccount
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from sequencer.stf.constants import SECP256K1_N, SECP256K1_N_HALF
from sequencer.stf.eip712 import (
    address_of,
    recover_signer,
    sign_transfer,
    sign_withdraw,
    signature_valid,
    signing_digest,
)
from sequencer.stf.types import ChainConfig, Transfer, Withdraw

CONFIG = ChainConfig(chain_id=31337, rollup=bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcb5ddbaf4c3f1e5b1")


def typed_data(tx: Transfer | Withdraw, config: ChainConfig) -> dict[str, Any]:
    kind = "Transfer" if isinstance(tx, Transfer) else "Withdraw"
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            kind: [
                {"name": "from", "type": "address"},
                {"name": "to", "type": "address"},
                {"name": "amount", "type": "uint256"},
                {"name": "nonce", "type": "uint64"},
            ],
        },
        "primaryType": kind,
        "domain": {
            "name": "DerivRollup",
            "version": "1",
            "chainId": config.chain_id,
            "verifyingContract": to_checksum_address(config.rollup),
        },
        "message": {
            "from": to_checksum_address(tx.sender),
            "to": to_checksum_address(tx.to),
            "amount": tx.amount,
            "nonce": tx.nonce,
        },
    }


def test_address_of__matches_eth_account() -> None:
    assert to_checksum_address(address_of(KEY)) == EthAccount.from_key(KEY).address


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from([sign_transfer, sign_withdraw]),
    st.binary(min_size=20, max_size=20),
    st.integers(0, 2**256 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(1, 2**64),
)
def test_digest_and_signature__agree_with_eth_account(
    sign: Any, to: bytes, amount: int, nonce: int, chain_id: int
) -> None:
    config = ChainConfig(chain_id, CONFIG.rollup)
    tx = sign(KEY, to, amount, nonce, config)
    message = encode_typed_data(full_message=typed_data(tx, config))
    assert _hash_eip191_message(message) == signing_digest(tx, config)
    # a wallet's signature (eth-account) is accepted by the state machine ...
    wallet = EthAccount.sign_typed_data(KEY, full_message=typed_data(tx, config))
    wallet_tx = replace(tx, r=wallet.r, s=wallet.s, v=wallet.v)
    assert recover_signer(wallet_tx, config) == tx.sender
    # ... and ours recovers to the same address through eth-account
    sig = tx.r.to_bytes(32, "big") + tx.s.to_bytes(32, "big") + bytes([tx.v])
    assert EthAccount.recover_message(message, signature=sig) == to_checksum_address(tx.sender)
    assert tx.s <= SECP256K1_N_HALF and tx.v in (27, 28)


def test_signature__bound_to_chain_rollup_and_kind() -> None:
    tx = sign_transfer(KEY, b"\x02" * 20, 10, 0, CONFIG)
    assert signature_valid(tx, CONFIG)
    assert not signature_valid(tx, ChainConfig(CONFIG.chain_id + 1, CONFIG.rollup))
    assert not signature_valid(tx, ChainConfig(CONFIG.chain_id, b"\x01" * 20))
    as_withdraw = Withdraw(tx.sender, tx.to, tx.amount, tx.nonce, tx.r, tx.s, tx.v)
    assert not signature_valid(as_withdraw, CONFIG)
    for field, value in (("amount", 11), ("nonce", 1), ("to", b"\x03" * 20)):
        assert not signature_valid(replace(tx, **{field: value}), CONFIG)  # type: ignore[arg-type]


def test_signature__malleable_high_s_refused() -> None:
    tx = sign_transfer(KEY, b"\x02" * 20, 10, 0, CONFIG)
    flipped = replace(tx, s=SECP256K1_N - tx.s, v=55 - tx.v)  # the other valid ECDSA signature
    assert flipped.s > SECP256K1_N_HALF
    assert recover_signer(flipped, CONFIG) is None


@pytest.mark.parametrize(
    "change",
    [
        {"v": 0},
        {"v": 1},
        {"v": 29},
        {"r": 0},
        {"s": 0},
        {"r": SECP256K1_N},
        {"s": SECP256K1_N_HALF + 1},
        {"r": 2**256 - 1},
    ],
)
def test_signature__out_of_range_refused(change: dict[str, int]) -> None:
    tx = sign_transfer(KEY, b"\x02" * 20, 10, 0, CONFIG)
    assert recover_signer(replace(tx, **change), CONFIG) is None  # type: ignore[arg-type]


def test_signature__other_v_recovers_someone_else() -> None:
    tx = sign_transfer(KEY, b"\x02" * 20, 10, 0, CONFIG)
    other = recover_signer(replace(tx, v=55 - tx.v), CONFIG)
    assert other is None or other != tx.sender
