# pragma version ~=0.4.3
"""
@title Library Harness (tests only)
@license MIT
@notice Exposes the library modules' internal functions (`smt`,
        `accounts`, `markets`, `state_keys`, `escape`) as views, so the tests can
        check them against the Python state machine directly. Never
        deployed outside the tests.
"""

import accounts
import escape
import markets
import smt
import state_keys


@external
@pure
def check(root: bytes32, w: smt.Witness) -> bool:
    return smt.check(root, w)


@external
@pure
def check_and_write(root: bytes32, w: smt.Witness, new_value: Bytes[2048]) -> (bool, bytes32):
    return smt.check_and_write(root, w, keccak256(new_value))


@external
@pure
def read_account(data: Bytes[2048]) -> (int256, uint256, uint256):
    return accounts.read(data)


@external
@pure
def position(data: Bytes[2048], i: uint256) -> accounts.Position:
    return accounts.position(data, i)


@external
@pure
def exit_equity(account_value: Bytes[2048], markets_value: Bytes[2048]) -> int256:
    return escape.equity(account_value, markets_value)


@external
@pure
def market_count(data: Bytes[2048]) -> uint256:
    return markets.count(data)


@external
@pure
def market_record(data: Bytes[2048], market: uint256) -> markets.Market:
    return markets.record(data, market)


@external
@pure
def encode_market(m: markets.Market) -> Bytes[128]:
    return markets.encode(m)


@external
@pure
def keys(account: address, nonce: uint256, digest: bytes32) -> (bytes32, bytes32, bytes32, bytes32[4]):
    return (
        state_keys.account_key(account),
        state_keys.withdrawal_key(account, nonce),
        state_keys.order_key(digest),
        [state_keys.GLOBAL_KEY, state_keys.MARKETS_KEY, state_keys.INSURANCE_KEY, state_keys.ORACLE_KEY],
    )
