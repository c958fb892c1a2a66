"""The verifier's pieces on their own: the library modules against the Python state machine, the
rules contracts' `execute`, and the FraudVerifier's dispatch and witness loop.

The library modules (`smt`, `accounts`, `markets`, `state_keys`) are internal functions, so a
test-only contract (`tests/contracts/vyper/LibHarness.vy`) exposes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import vyper
from contracts_harness import Harness, user_address, user_key
from eth_abi.abi import encode as abi_encode
from eth_tester.exceptions import TransactionFailed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vyper.compiler.input_bundle import FilesystemInputBundle
from web3.contract import Contract

from contracts.bindings import TransactionReverted, witness_arg
from contracts.build import CONTRACTS_DIR
from prover.witness import build_tx_witnesses
from sequencer.stf import eip712 as py_eip712
from sequencer.stf.codec import encode_account, encode_market, encode_markets, encode_tx
from sequencer.stf.constants import EMPTY, MAX_VALUE_BYTES
from sequencer.stf.eip712 import sign_order, sign_transfer
from sequencer.stf.hashing import keccak
from sequencer.stf.keys import (
    account_key,
    global_key,
    insurance_key,
    markets_key,
    oracle_key,
    order_key,
    withdrawal_key,
)
from sequencer.stf.smt import TERMINAL_EMPTY, SparseMerkleTree, Witness, check_witness, write_witness
from sequencer.stf.state import State, copy_state, set_account, set_markets, set_next_deposit_index
from sequencer.stf.types import (
    Account,
    Deleverage,
    Fill,
    Funding,
    L1Context,
    L1Message,
    Liquidate,
    Market,
    MarketParams,
    Order,
    Position,
    Signature,
)

HARNESS_SOURCE = Path(__file__).resolve().parent / "vyper" / "LibHarness.vy"

PARAMS = MarketParams(
    tick_size=1,
    lot_size=1_000,
    max_position=10**12,
    imr_bps=1_000,
    mmr_bps=500,
    maker_fee_bps=-1,
    taker_fee_bps=5,
    liquidation_penalty_bps=100,
    breaker_bps=1_500,
    max_funding_bps=50,
    funding_interval=60,
    breaker_window=60,
    max_oracle_age=60,
)


@pytest.fixture(scope="module")
def h() -> Iterator[Harness]:
    yield Harness.create()


@pytest.fixture(scope="module")
def lib(h: Harness) -> Contract:
    """The library harness, compiled from the test folder against `contracts/`, deployed."""
    out = vyper.compile_code(
        HARNESS_SOURCE.read_text(),
        contract_path=HARNESS_SOURCE.name,
        resolved_path=HARNESS_SOURCE,
        input_bundle=FilesystemInputBundle([CONTRACTS_DIR, HARNESS_SOURCE.parent]),
        output_formats=["abi", "bytecode"],
    )
    factory = h.w3.eth.contract(abi=out["abi"], bytecode=out["bytecode"])
    tx = factory.constructor().transact({"from": h.deployer.address})
    address = h.w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    return h.w3.eth.contract(address=address, abi=out["abi"])


# ---- constants written into the sources ----


def test_state_keys__constants_and_functions__equal_python_keys(lib: Contract) -> None:
    account, digest = user_address(1), keccak(b"an order")
    a_key, w_key, o_key, singletons = lib.functions.keys(account, 7, digest).call()
    assert (a_key, w_key, o_key) == (account_key(account), withdrawal_key(account, 7), order_key(digest))
    assert list(singletons) == [global_key(), markets_key(), insurance_key(), oracle_key()]


def test_eip712__type_strings_in_source__equal_python_type_strings() -> None:
    source = (CONTRACTS_DIR / "eip712.vy").read_text()
    hashed = dict(re.findall(r'(\w+_TYPEHASH): constant\(bytes32\) = keccak256\(\s*"([^"]+)"\s*\)', source))
    assert hashed == {
        "EIP712_DOMAIN_TYPEHASH": (
            "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
        ),
        "TRANSFER_TYPEHASH": py_eip712.TRANSFER_TYPE,
        "WITHDRAW_TYPEHASH": py_eip712.WITHDRAW_TYPE,
        "ORDER_TYPEHASH": py_eip712.ORDER_TYPE,
        "CANCEL_TYPEHASH": py_eip712.CANCEL_TYPE,
        "PRICE_TYPEHASH": py_eip712.PRICE_TYPE,
        "LIQUIDATE_TYPEHASH": py_eip712.LIQUIDATE_TYPE,
        "LEG_TYPEHASH": py_eip712.LEG_TYPE,
        "BUNDLE_TYPEHASH": py_eip712.BUNDLE_TYPE,
    }


# ---- smt.vy against sequencer.stf.smt ----


def _clustered(base: int, splits: list[tuple[int, int]]) -> list[bytes]:
    """Keys sharing long prefixes with `base` (long paths with EMPTY siblings)."""
    keys = []
    for prefix_bits, low in splits:
        mask = (1 << (256 - prefix_bits)) - 1
        keys.append(((base & ~mask) | (low & mask)).to_bytes(32, "big"))
    return keys


keys32 = st.binary(min_size=32, max_size=32)
key_sets = st.one_of(
    st.lists(keys32, max_size=25),
    st.builds(
        _clustered,
        st.integers(0, 2**256 - 1),
        st.lists(st.tuples(st.integers(0, 256), st.integers(0, 2**256 - 1)), min_size=1, max_size=12),
    ),
)
values = st.one_of(st.binary(min_size=1, max_size=80), st.just(b"v" * MAX_VALUE_BYTES))


def _tamper(w: Witness, how: int) -> Witness:
    """One of several changes a prover could make to a witness."""
    if how == 0:
        return w
    if how == 1:
        return replace(w, value=w.value + b"x")
    if how == 2:
        return replace(w, terminal=(w.terminal + 1) % 3)
    if how == 3:
        return replace(w, depth=w.depth + 1)
    if how == 4:
        return replace(w, depth=w.depth + 1, present=w.present << 1)
    if how == 5:
        return replace(w, siblings=(*w.siblings, b"\x05" * 32))
    if how == 6:
        return replace(w, present=w.present | (1 << w.depth), depth=w.depth + 1)
    if how == 7 and w.siblings:
        return replace(w, siblings=w.siblings[:-1])
    if how == 8 and w.siblings:
        s0 = w.siblings[0]
        return replace(w, siblings=(bytes([s0[0] ^ 1]) + s0[1:], *w.siblings[1:]))
    if how == 9:
        return replace(w, other_key=w.key)
    if how == 10:
        return replace(w, depth=257)
    if how == 11 and w.depth:
        # claim an EMPTY sibling is present and list it as zero bytes: same climb, still well formed
        free = [j for j in range(w.depth) if not (w.present >> j) & 1]
        if free:
            j = free[0]
            before = (w.present & ((1 << j) - 1)).bit_count()
            siblings = (*w.siblings[:before], EMPTY, *w.siblings[before:])
            return replace(w, present=w.present | (1 << j), siblings=siblings)
    return w


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(key_sets, keys32, st.data())
def test_smt__check_and_write__equal_python(
    lib: Contract, keys: list[bytes], extra: bytes, data: st.DataObject
) -> None:
    tree = SparseMerkleTree()
    for k in keys:
        tree.set(k, data.draw(values))
    root = tree.root
    probe = data.draw(st.sampled_from([*keys, extra])) if keys else extra
    w = _tamper(tree.witness(probe), data.draw(st.integers(0, 11)))
    new_value = data.draw(values)
    expected = check_witness(w, root)
    arg = witness_arg(w)
    if len(w.value) > MAX_VALUE_BYTES:  # beyond the struct's Bytes[2048]: the ABI decoder refuses the call
        assert not expected
        with pytest.raises(TransactionFailed):
            lib.functions.check(root, arg).call()
        return
    assert lib.functions.check(root, arg).call() is expected
    ok, written = lib.functions.check_and_write(root, arg, new_value).call()
    assert ok is expected
    if expected:
        assert written == write_witness(w, new_value)
        twin = tree.copy()
        twin.set(probe, new_value)
        assert written == twin.root


def test_smt__witness_of_a_256_deep_path__checks_and_writes(lib: Contract) -> None:
    a, b = bytes(32), bytes(31) + b"\x01"
    tree = SparseMerkleTree()
    tree.set(a, b"a")
    tree.set(b, b"b")
    w = tree.witness(a)
    assert (w.depth, w.present) == (256, 1)
    assert lib.functions.check(tree.root, witness_arg(w)).call()
    ok, written = lib.functions.check_and_write(tree.root, witness_arg(w), b"z").call()
    assert ok and written == write_witness(w, b"z")
    assert not lib.functions.check(tree.root, witness_arg(replace(w, present=3))).call()


def test_witness_arg__witness__tuple_in_struct_field_order() -> None:
    tree = SparseMerkleTree()
    present_key = keccak(b"present")
    tree.set(present_key, b"value")
    tree.set(keccak(b"other"), b"other value")
    w = tree.witness(present_key)
    key, value, terminal, other_key, other_value_hash, depth, present, siblings = witness_arg(w)
    assert (key, value, terminal, other_key, other_value_hash, depth, present) == (
        w.key,
        w.value,
        w.terminal,
        w.other_key,
        w.other_value_hash,
        w.depth,
        w.present,
    )
    assert siblings == list(w.siblings) and isinstance(siblings, list)
    absent = witness_arg(tree.witness(b"\x00" * 32))
    assert absent[1] == b"" and absent[2] in (TERMINAL_EMPTY, 2)
    assert witness_arg(absent) == absent  # an ABI tuple already: the same tuple


# ---- accounts.vy and markets.vy against the Python codec ----


def test_accounts__read__head_count_and_positions(lib: Contract) -> None:
    positions = (Position(0, 3_000, 3_000 * 7, -5), Position(3, -1_000, -900_000, 2**100))
    value = encode_account(Account(-12, 9, positions))
    assert lib.functions.read_account(value).call() == [-12, 9, 2]
    assert lib.functions.read_account(b"").call() == [0, 0, 0]
    for i, p in enumerate(positions):
        assert list(lib.functions.position(value, i).call()) == [
            p.market,
            p.size,
            p.open_notional,
            p.funding_snapshot,
        ]


def _account_words(collateral: int, nonce: int, *positions: tuple[int, int, int, int]) -> bytes:
    """An Account leaf value as ABI words, positions (market, size, open notional, snapshot) in the
    order given: also the shapes the state machine's encoder never writes."""
    types = ["int256", "uint256"] + ["uint256", "int256", "int256", "int256"] * len(positions)
    return abi_encode(types, [collateral, nonce, *(x for p in positions for x in p)])


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"\x01" * 63, id="short"),
        pytest.param(b"\x01" * 65, id="ragged"),
        pytest.param(encode_account(Account(1, 1)) + bytes(128), id="zero-size-position"),
        pytest.param(_account_words(1, 1, (2, 1, 1, 0), (1, 1, 1, 0)), id="out-of-order"),
        pytest.param(_account_words(1, 1, (2, 1, 1, 0), (2, 1, 1, 0)), id="repeated"),
        pytest.param(
            encode_account(Account(1, 1, tuple(Position(i, 1, 1, 0) for i in range(9)))), id="nine-positions"
        ),
    ],
)
def test_accounts__read_wrong_shape__bad_witness(lib: Contract, value: bytes) -> None:
    with pytest.raises(Exception, match="verifier: bad witness"):
        lib.functions.read_account(value).call()


def _market(i: int) -> Market:
    return Market(
        replace(PARAMS, maker_fee_bps=-(i + 1), taker_fee_bps=i + 2, max_oracle_age=2**32 - 1 - i),
        mark_price=2**64 - 1 - i,
        index_price=3_000 + i,
        oracle_time=1_700_000_000 + i,
        halted_until=i,
        funding_index=-(2**127) + i if i % 2 else 2**127 - 1 - i,
        last_funding_time=1_700_000_060 + i,
        breaker_ref_time=1_699_999_999,
        breaker_ref_price=2_999,
    )


def _market_fields(m: Market) -> list[int]:
    """The Vyper `markets.Market` struct's fields, in order."""
    p = m.params
    return [
        m.mark_price,
        m.index_price,
        m.oracle_time,
        m.halted_until,
        m.funding_index,
        m.last_funding_time,
        m.breaker_ref_time,
        p.tick_size,
        p.lot_size,
        p.max_position,
        m.breaker_ref_price,
        p.imr_bps,
        p.mmr_bps,
        p.maker_fee_bps,
        p.taker_fee_bps,
        p.liquidation_penalty_bps,
        p.breaker_bps,
        p.max_funding_bps,
        p.funding_interval,
        p.breaker_window,
        p.max_oracle_age,
    ]


def test_markets__record_and_encode__equal_python_codec(lib: Contract) -> None:
    records = [_market(i) for i in range(16)]
    value = encode_markets(records)
    assert len(value) == MAX_VALUE_BYTES
    assert lib.functions.market_count(value).call() == 16
    assert lib.functions.market_count(b"").call() == 0
    for i in (0, 1, 7, 15):
        fields = list(lib.functions.market_record(value, i).call())
        assert fields == _market_fields(records[i])
        assert lib.functions.encode_market(fields).call() == encode_market(records[i])
    with pytest.raises(Exception, match="verifier: bad witness"):
        lib.functions.market_count(value[:-1]).call()


# ---- the rules contracts ----


def _hashes(*values: bytes) -> tuple[bytes, ...]:
    """What `execute` returns for new values: their keccak hashes."""
    return tuple(keccak(v) for v in values)


def _deposit_raw(index: int, to: bytes, amount: int) -> bytes:
    return bytes([1]) + index.to_bytes(8, "big") + to + amount.to_bytes(32, "big")


def test_transfer_rules__transfer__keys_applies_and_new_values(h: Harness) -> None:
    raw = h.transfer_tx(1, user_address(2), 40, 3)
    sender = encode_account(Account(100, 3))
    markets = encode_markets([_market(0)])
    keys, applies, new = h.transfer_rules.execute(raw, [sender, b"", markets], 0, 0)
    assert keys == (account_key(user_address(1)), account_key(user_address(2)), markets_key())
    assert applies
    assert new == _hashes(encode_account(Account(60, 4)), encode_account(Account(40, 0)), markets)


def test_transfer_rules__self_transfer__key_listed_once_not_applied(h: Harness) -> None:
    raw = h.transfer_tx(1, user_address(1), 40, 0)
    keys, applies, new = h.transfer_rules.execute(raw, [encode_account(Account(100, 0)), b""], 0, 0)
    assert (keys, applies, new) == ((account_key(user_address(1)), markets_key()), False, ())


def test_transfer_rules__withdraw__withdrawal_leaf_written(h: Harness) -> None:
    raw = h.withdraw_tx(1, user_address(9), 40, 0)
    keys, applies, new = h.transfer_rules.execute(raw, [encode_account(Account(100, 0)), b"", b""], 0, 0)
    assert keys == (account_key(user_address(1)), withdrawal_key(user_address(1), 0), markets_key())
    assert applies
    assert new == _hashes(
        encode_account(Account(60, 1)),
        bytes(12) + user_address(9) + (40).to_bytes(32, "big"),
        b"",
    )


def test_transfer_rules__deposit__queue_hash_from_the_bridge(h: Harness) -> None:
    index = h.bridge.queue_length()
    h.deposit(user_address(3), 500)
    raw = _deposit_raw(index, user_address(3), 500)
    global_value = index.to_bytes(32, "big")
    keys, applies, new = h.transfer_rules.execute(raw, [global_value, b"", b""], index + 1, 0)
    assert keys == (global_key(), account_key(user_address(3)), markets_key())
    assert applies and new == _hashes((index + 1).to_bytes(32, "big"), encode_account(Account(500, 0)), b"")
    # the same deposit with another amount does not match the queue; nor past queue_end
    assert not h.transfer_rules.execute(
        _deposit_raw(index, user_address(3), 501), [global_value, b"", b""], 9, 0
    )[1]
    assert not h.transfer_rules.execute(raw, [global_value, b"", b""], index, 0)[1]


def test_transfer_rules__values_count_differs__keys_and_not_applied(h: Harness) -> None:
    raw = h.transfer_tx(1, user_address(2), 40, 0)
    keys, applies, new = h.transfer_rules.execute(raw, [encode_account(Account(100, 0))], 0, 0)
    assert len(keys) == 3 and (applies, new) == (False, ())


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x01" * 60,
        b"\x02" * 147,
        b"\x03",
        b"\x04" + bytes(8),
        b"\x05\x00\x00\x00",
        b"\x06\x00",
        b"\x08" * 121,
    ],
    ids=[
        "empty",
        "deposit-60",
        "transfer-147",
        "withdraw-1",
        "message-no-payload",
        "oracle-no-price",
        "funding-2",
        "cancel-121",
    ],
)
def test_transfer_rules__undecodable__touches_nothing(h: Harness, raw: bytes) -> None:
    assert h.transfer_rules.execute(raw, [], 0, 0) == ((), False, ())


def test_oracle_rules__funding__markets_key_and_new_record(h: Harness) -> None:
    due = replace(_market(1), oracle_time=1_000, last_funding_time=1_000, halted_until=0)
    value = encode_markets([_market(0), due])
    keys, applies, new = h.oracle_rules.execute(encode_tx(Funding(1, 1_000)), [value], 0, 1_000 + 60)
    assert keys == (markets_key(),) and applies
    assert new != (keccak(value),)
    keys, applies, new = h.oracle_rules.execute(encode_tx(Funding(1, 1_000)), [value], 0, 1_000 + 59)
    assert (keys, applies, new) == ((markets_key(),), False, ())


@pytest.mark.parametrize("since", [0, 999, 1_001, 1_060, 2**64 - 1])
def test_oracle_rules__funding_of_another_period__not_applied(h: Harness, since: int) -> None:
    due = replace(_market(1), oracle_time=1_000, last_funding_time=1_000, halted_until=0)
    value = encode_markets([_market(0), due])
    keys, applies, new = h.oracle_rules.execute(encode_tx(Funding(1, since)), [value], 0, 1_000 + 60)
    assert (keys, applies, new) == ((markets_key(),), False, ())


def test_trade_rules__fill_between_one_trader__keys_listed_once_not_applied(h: Harness) -> None:
    order = Order(user_address(1), 0, 0, 100, 1_000, 0, 0, 1)
    maker = sign_order(user_key(1), order, h.config)
    taker = sign_order(user_key(1), replace(order, side=1), h.config)
    raw = encode_tx(Fill(maker, taker, 1_000))
    keys, applies, new = h.trade_rules.execute(raw, [b""] * 5, 0, 0)
    assert (
        len(keys) == 5
        and keys[0] == account_key(user_address(1))
        and keys[-2:]
        == (
            markets_key(),
            insurance_key(),
        )
    )
    assert (applies, new) == (False, ())


@pytest.mark.parametrize(
    ("rules", "tx", "count"),
    [
        ("risk_rules", Liquidate(user_address(1), user_address(1), 0, 1_000, 0, Signature(1, 1, 27)), 3),
        ("risk_rules", Deleverage(user_address(1), user_address(2), 0, 0), 4),
        ("transfer_rules", L1Message(0, b"\x02"), 3),
    ],
    ids=["liquidate-self", "deleverage", "l1message"],
)
def test_rules__values_count_differs__keys_and_not_applied(
    h: Harness, rules: str, tx: Any, count: int
) -> None:
    keys, applies, new = getattr(h, rules).execute(encode_tx(tx), [], 0, 0)
    assert len(keys) == count and (applies, new) == (False, ())


def test_oracle_trade_and_risk_rules__undecodable__touch_nothing(h: Harness) -> None:
    rules_of = {5: h.oracle_rules, 6: h.oracle_rules, 7: h.trade_rules, 11: h.trade_rules}
    for raw in (
        b"\x07" * 250,
        b"\x0b" * 38,
        b"\x09" * 125,
        b"\x0a" * 42,
        b"\x0a" * 43,  # a Deleverage without its nonce (the encoding before it had one)
        b"\x0a" * 50,
        b"\x0a" * 52,
        b"\x09" * 5,
        b"\x05" * 4,
        b"\x06\x00",
        b"\x06\x00\x01",  # a Funding without its period (the encoding before it had one)
        b"\x06" * 10,
        b"\x06" * 12,
    ):
        assert rules_of.get(raw[0], h.risk_rules).execute(raw, [], 0, 0) == ((), False, ())


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([encode_account(Account(100, 0)) + b"\x00", b"", b""], id="account-65-bytes"),
        pytest.param([encode_account(Account(100, 0)), b"", b"\x00" * 100], id="markets-100-bytes"),
        pytest.param([encode_account(Account(100, 0)), b"\x00" * 63, b""], id="withdrawal-63-bytes"),
    ],
)
def test_transfer_rules__value_of_wrong_shape__bad_witness(h: Harness, values: list[bytes]) -> None:
    raw = h.withdraw_tx(1, user_address(9), 40, 0)
    with pytest.raises(TransactionReverted) as err:
        h.transfer_rules.execute(raw, values, 0, 0)
    assert err.value.reason == "verifier: bad witness"


def test_transfer_rules__global_of_wrong_shape__bad_witness(h: Harness) -> None:
    with pytest.raises(TransactionReverted) as err:
        h.transfer_rules.execute(_deposit_raw(0, user_address(1), 1), [b"\x00" * 31, b"", b""], 1, 0)
    assert err.value.reason == "verifier: bad witness"


def test_transfer_rules__account_with_positions__settled_and_margin_checked(h: Harness) -> None:
    base = _market(0)
    market = replace(
        base,
        params=replace(base.params, max_oracle_age=60),
        mark_price=3_000,
        oracle_time=1_000,
        funding_index=7,
    )
    markets = encode_markets([market])
    # long 1,000 @ 3,000,000 with 400,000: settling pays 1,000 * 7; initial margin is 300,000.
    held = encode_account(Account(400_000, 0, (Position(0, 1_000, 3_000_000, 0),)))
    settled = Account(400_000 - 7_000, 0, (Position(0, 1_000, 3_000_000, 7),))
    raw = h.transfer_tx(1, user_address(2), 40, 0)
    _, applies, new = h.transfer_rules.execute(raw, [held, b"", markets], 0, 1_000)
    assert applies
    assert new == _hashes(
        encode_account(replace(settled, collateral=settled.collateral - 40, nonce=1)),
        encode_account(Account(40, 0)),
        markets,
    )
    too_much = h.transfer_tx(1, user_address(2), 93_001, 0)  # equity 300,000 - 1 < imr
    assert not h.transfer_rules.execute(too_much, [held, b"", markets], 0, 1_000)[1]
    assert not h.transfer_rules.execute(raw, [held, b"", markets], 0, 1_061)[1]  # a stale price


def test_verifier__account_position_in_an_unlisted_market__bad_witness(h: Harness) -> None:
    raw = h.transfer_tx(1, user_address(2), 40, 0)
    held = encode_account(Account(400_000, 0, (Position(3, 1_000, 3_000_000, 0),)))
    with pytest.raises(TransactionReverted) as err:
        h.transfer_rules.execute(raw, [held, b"", encode_markets([_market(0)])], 0, 0)
    assert err.value.reason == "verifier: bad witness"


# ---- the FraudVerifier's dispatch and witness loop ----


def _transfer_case(h: Harness) -> tuple[State, bytes, list[Witness], bytes, L1Context]:
    state = State()
    set_account(state, user_address(1), Account(1_000, 0))
    set_markets(state, [_market(0)])
    set_next_deposit_index(state, 0)
    for i in range(20):
        set_account(state, keccak(b"filler" + bytes([i]))[:20], Account(i + 1, 0))
    raw = encode_tx(sign_transfer(user_key(1), user_address(2), 10, 0, h.config))
    ctx = L1Context(0, {}, 0)
    witnesses, post = build_tx_witnesses(copy_state(state), raw, ctx, h.config)
    return state, raw, witnesses, post, ctx


def test_apply_tx__transfer__post_root_of_python(h: Harness) -> None:
    state, raw, witnesses, post, _ = _transfer_case(h)
    assert len(witnesses) == 3 and witnesses[2].value  # the Markets leaf is read, not written
    assert h.verifier.apply_tx(state.tree.root, raw, witnesses, 0, 0) == post != state.tree.root


@pytest.mark.parametrize(
    "change",
    ["swapped", "dropped", "extra", "other_key", "stale_second"],
)
def test_apply_tx__witness_list_not_the_touched_keys__bad_witness(h: Harness, change: str) -> None:
    state, raw, witnesses, _, _ = _transfer_case(h)
    if change == "swapped":
        witnesses = [witnesses[1], witnesses[0], witnesses[2]]
    elif change == "dropped":
        witnesses = witnesses[:2]
    elif change == "extra":
        witnesses = [*witnesses, state.tree.witness(global_key())]
    elif change == "other_key":
        witnesses = [witnesses[0], state.tree.witness(account_key(user_address(3))), witnesses[2]]
    else:  # witness 1 taken against the pre-root, not against the root after write 0
        witnesses = [witnesses[0], state.tree.witness(account_key(user_address(2))), witnesses[2]]
    with pytest.raises(TransactionReverted) as err:
        h.verifier.apply_tx(state.tree.root, raw, witnesses, 0, 0)
    assert err.value.reason == "verifier: bad witness"


def test_apply_tx__unknown_type_with_a_witness__bad_witness(h: Harness) -> None:
    state, _, witnesses, _, _ = _transfer_case(h)
    root = state.tree.root
    assert h.verifier.apply_tx(root, b"\x0d" + bytes(60), [], 0, 0) == root
    with pytest.raises(TransactionReverted) as err:
        h.verifier.apply_tx(root, b"\x0d" + bytes(60), witnesses[:1], 0, 0)
    assert err.value.reason == "verifier: bad witness"
