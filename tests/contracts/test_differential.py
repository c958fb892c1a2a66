"""THE differential property: the Vyper FraudVerifier computes the Python state machine's root.

Random states (accounts with random balances and nonces, existing withdrawals, a random
`next_queue_index`, listed markets, filler leaves) and random transactions, valid and invalid
(bad signatures of many kinds, wrong nonce, overdraft, self-transfer, zero and huge amounts,
deposits that do not match the queue, garbage bytes, wrong lengths). For each case:
`FraudVerifier.apply_tx(pre_root, tx, witnesses, queue_end, l2_time)` must equal the post root of
`sequencer.stf.transition.apply_tx`, with the witnesses from `prover.witness.build_tx_witnesses`.

TODO(v2 rules follow-up): the Vyper rules cover Deposit, Transfer and Withdraw of accounts without
positions so far. The follow-up adds the other types (L1Message, OracleUpdate, Funding, Fill,
Cancel, Liquidate, Deleverage, BundleFill) and accounts with positions to these scenarios, and
drops the filter that keeps random bytes away from those types (`_covered`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from contracts_harness import Harness, record_gas, user_address, user_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prover.witness import build_tx_witnesses
from sequencer.stf.codec import decode_tx, encode_tx
from sequencer.stf.constants import MAX_TOTAL_DEPOSITS, SECP256K1_N, UINT64_MAX
from sequencer.stf.eip712 import sign_transfer, sign_withdraw
from sequencer.stf.errors import DecodeError
from sequencer.stf.hashing import keccak
from sequencer.stf.state import (
    State,
    copy_state,
    get_account,
    set_account,
    set_markets,
    set_next_deposit_index,
    set_withdrawal,
)
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import (
    Account,
    ChainConfig,
    Deposit,
    L1Context,
    Market,
    MarketParams,
    Transfer,
    Withdraw,
)

N_KEYED_USERS = 6
UNRECOVERABLE_R = 5
"""`5**3 + 7` is not a square mod p: no secp256k1 point has x = 5."""
KEYLESS = [keccak(b"keyless" + bytes([i]))[:20] for i in range(3)]
DEPOSITS = [
    (user_address(1), 100),
    (user_address(2), 1),
    (KEYLESS[0], 2**100),
    (user_address(1), 7),
    (user_address(3), 123_456),
    (user_address(4), MAX_TOTAL_DEPOSITS - 2**100 - 200_000),
]


@pytest.fixture(scope="module")
def h() -> Iterator[Harness]:
    harness = Harness.create()
    for to, amount in DEPOSITS:
        harness.deposit(to, amount)
    yield harness


def _addresses() -> list[bytes]:
    return [user_address(i) for i in range(1, N_KEYED_USERS + 1)] + KEYLESS


balances = st.one_of(
    st.just(0),
    st.integers(1, 1_000),
    st.integers(0, 2**100),
    st.integers(MAX_TOTAL_DEPOSITS - 10, MAX_TOTAL_DEPOSITS + 10),  # around the cap (amount rule)
)
nonces = st.one_of(st.integers(0, 3), st.just(UINT64_MAX), st.integers(0, UINT64_MAX))
l2_times = st.one_of(st.just(0), st.integers(1_700_000_000, 1_800_000_000))
MARKET = Market(
    MarketParams(
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
    ),
    mark_price=3_000,
    index_price=3_001,
    oracle_time=1_700_000_000,
)
"""A listed market: every Deposit, Transfer and Withdraw reads the Markets leaf."""


@st.composite
def states(draw: st.DrawFn) -> State:
    state = State()
    for address in _addresses():
        if draw(st.booleans()):
            set_account(state, address, Account(draw(balances), draw(nonces)))
            if draw(st.integers(0, 4)) == 0:  # a withdrawal already at the account's nonce
                nonce = get_account(state, address).nonce
                set_withdrawal(state, address, nonce, KEYLESS[1], draw(st.integers(1, 2**64)))
    if draw(st.booleans()):
        set_next_deposit_index(state, draw(st.integers(0, len(DEPOSITS) + 1)))
    if draw(st.booleans()):
        set_markets(state, [MARKET] * draw(st.integers(1, 16)))
    for i in range(draw(st.integers(0, 40))):  # filler leaves deepen the tree
        set_account(state, keccak(b"filler" + i.to_bytes(2, "big"))[:20], Account(i + 1, i))
    return state


SIGNED_FLAWS = [
    "none",
    "none",
    "none",
    "none",
    # signature
    "other_key",
    "high_s",
    "v_flipped",
    "v_zero",
    "v_29",
    "r_zero",
    "s_zero",
    "r_at_n",
    "s_at_half_plus_one",
    "random_signature",
    "keyless_sender",
    "zero_sender_unrecoverable",
    "wrong_domain",
    "wrong_type",
    # rules
    "zero_amount",
    "overdraft",
    "huge_amount",
    "stale_nonce",
    "future_nonce",
    "self_transfer",
    "withdrawal_exists",
    "zero_recipient",
]


@st.composite
def signed_txs(draw: st.DrawFn, state: State, config: ChainConfig, withdraw: bool, flaw: str) -> bytes:
    """A Transfer or Withdraw with the one `flaw` (or none); the sender is funded."""
    user = draw(st.integers(1, N_KEYED_USERS))
    sender = user_address(user)
    account = get_account(state, sender)
    if account.collateral == 0 or draw(st.integers(0, 3)) == 0:
        account = Account(draw(st.integers(1, 2**100)), account.nonce)
        set_account(state, sender, account)
    to = draw(st.sampled_from([a for a in _addresses() if a != sender]))
    amount = draw(st.one_of(st.integers(1, account.collateral), st.just(account.collateral)))
    nonce = account.nonce
    if flaw == "self_transfer":
        to = sender
    elif flaw == "zero_recipient":  # a withdrawal to 0x0 is a no-op; a transfer to it is valid
        to = bytes(20)
    elif flaw == "zero_amount":
        amount = 0
    elif flaw == "overdraft":
        amount = account.collateral + draw(st.integers(1, 2**64))
    elif flaw == "huge_amount":
        # Above the deposit cap but covered: a balance no real state has, to pin the amount rule.
        amount = draw(st.integers(MAX_TOTAL_DEPOSITS + 1, 2**200))
        account = Account(amount + draw(st.integers(0, 2**64)), account.nonce)
        set_account(state, sender, account)
    elif flaw == "stale_nonce" and nonce > 0:
        nonce = draw(st.integers(0, nonce - 1))
    elif flaw in ("stale_nonce", "future_nonce") and nonce < UINT64_MAX:
        nonce = draw(st.integers(nonce + 1, UINT64_MAX))
    elif flaw == "withdrawal_exists":
        set_withdrawal(state, sender, nonce, KEYLESS[1], draw(st.integers(1, 2**64)))
    sign = sign_withdraw if withdraw else sign_transfer
    if flaw == "other_key":
        tx = replace(sign(user_key(user % N_KEYED_USERS + 1), to, amount, nonce, config), sender=sender)
    elif flaw == "wrong_domain":
        other = draw(
            st.sampled_from(
                [replace(config, chain_id=config.chain_id + 1), replace(config, rollup=KEYLESS[2])]
            )
        )
        tx = sign(user_key(user), to, amount, nonce, other)
    else:
        tx = sign(user_key(user), to, amount, nonce, config)
    if flaw == "high_s":
        tx = replace(tx, s=SECP256K1_N - tx.s, v=55 - tx.v)  # the same signature, malleated
    elif flaw == "v_flipped":
        tx = replace(tx, v=55 - tx.v)
    elif flaw == "v_zero":
        tx = replace(tx, v=tx.v - 27)
    elif flaw == "v_29":
        tx = replace(tx, v=29)
    elif flaw == "r_zero":
        tx = replace(tx, r=0)
    elif flaw == "s_zero":
        tx = replace(tx, s=0)
    elif flaw == "r_at_n":
        tx = replace(tx, r=SECP256K1_N)
    elif flaw == "s_at_half_plus_one":
        tx = replace(tx, s=SECP256K1_N // 2 + 1)
    elif flaw == "random_signature":
        tx = replace(tx, r=draw(st.integers(0, 2**256 - 1)), s=draw(st.integers(0, 2**256 - 1)))
    elif flaw == "keyless_sender":
        tx = replace(tx, sender=draw(st.sampled_from([*KEYLESS, bytes(20)])))
    elif flaw == "zero_sender_unrecoverable":
        # r = 5 is no curve point's x: recovery fails, which must not "recover" the zero address.
        # The zero address is funded with the right nonce, so only the signature is wrong.
        set_account(state, bytes(20), Account(account.collateral, nonce))
        tx = replace(tx, sender=bytes(20), r=UNRECOVERABLE_R)
    raw = encode_tx(tx)
    if flaw == "wrong_type":  # a Transfer's signature on a Withdraw and vice versa
        raw = bytes([5 - raw[0]]) + raw[1:]
    return raw


DEPOSIT_FLAWS = ["none", "wrong_index", "at_queue_end", "amount", "to", "random"]


@st.composite
def deposit_txs(draw: st.DrawFn, state: State, flaw: str) -> tuple[bytes, int]:
    """A Deposit with the one `flaw` (or none), and the batch's queue_end."""
    index = draw(st.integers(0, len(DEPOSITS) - 1))
    set_next_deposit_index(state, index)
    to, amount = DEPOSITS[index]
    queue_end = draw(st.integers(index + 1, len(DEPOSITS)))
    if flaw == "wrong_index":
        index = draw(st.integers(0, len(DEPOSITS) + 1).filter(lambda i: i != index))
        if index < len(DEPOSITS):
            to, amount = DEPOSITS[index]
    elif flaw == "at_queue_end":
        queue_end = index
    elif flaw == "amount":
        amount += draw(st.sampled_from([1, -1])) if amount > 1 else 1
    elif flaw == "to":
        to = draw(st.sampled_from([a for a in _addresses() if a != to]))
    elif flaw == "random":
        to, amount = draw(st.sampled_from(_addresses())), draw(st.integers(0, 2**256 - 1))
        queue_end = draw(st.integers(0, len(DEPOSITS) + 1))
    return encode_tx(Deposit(index, to, amount)), queue_end


OTHER_KINDS = ["garbage", "unknown_type", "wrong_length_signed", "wrong_length_deposit"]

RULE_FLAWS = ["zero_amount", "overdraft", "huge_amount", "stale_nonce", "future_nonce"]

SCENARIOS = (
    # (kind, flaw, examples): 88 examples in all (py-evm is slow)
    [("transfer", "none", 6), ("withdraw", "none", 6), ("deposit", "none", 6)]
    + [
        (kind, f, 1)
        for kind in ("transfer", "withdraw")
        for f in SIGNED_FLAWS
        if f not in ("none", "self_transfer", "withdrawal_exists", "zero_recipient", *RULE_FLAWS)
    ]
    + [(kind, f, 2) for kind in ("transfer", "withdraw") for f in RULE_FLAWS]
    + [("transfer", "self_transfer", 2), ("withdraw", "withdrawal_exists", 2)]
    + [(kind, "zero_recipient", 2) for kind in ("transfer", "withdraw")]
    + [("deposit", f, 2) for f in DEPOSIT_FLAWS if f != "none"]
    + [(k, "", 2) for k in OTHER_KINDS]
)
"""Every (transaction kind, flaw) pair with its number of hypothesis examples."""


def _covered(raw: bytes) -> bool:
    """Whether the Vyper rules cover `raw` yet: undecodable, or a Deposit, Transfer or Withdraw.

    TODO(v2 rules follow-up): every type is covered once the Vyper rules are complete."""
    try:
        return type(decode_tx(raw)) in (Deposit, Transfer, Withdraw)
    except DecodeError:
        return True


@st.composite
def cases(draw: st.DrawFn, config: ChainConfig, kind: str, flaw: str) -> tuple[State, bytes, int, int]:
    state = draw(states())
    queue_end = draw(st.integers(0, len(DEPOSITS) + 1))
    l2_time = draw(l2_times)
    if kind in ("transfer", "withdraw"):
        raw = draw(signed_txs(state, config, kind == "withdraw", flaw))
    elif kind == "deposit":
        raw, queue_end = draw(deposit_txs(state, flaw))
    elif kind == "garbage":
        raw = draw(st.binary(max_size=200).filter(_covered))
    elif kind == "unknown_type":
        raw = bytes([draw(st.sampled_from([0, 0x0C, 0x80, 255]))]) + draw(
            st.binary(min_size=60, max_size=160)
        )
    else:
        if kind == "wrong_length_signed":
            valid = draw(signed_txs(state, config, draw(st.booleans()), "none"))
        else:
            valid, queue_end = draw(deposit_txs(state, "none"))
        cut = draw(st.sampled_from([-32, -3, -1, 1, 2, 31]))
        raw = valid[:cut] if cut < 0 else valid + draw(st.binary(min_size=cut, max_size=cut))
    return state, raw, queue_end, l2_time


def _ctx(h: Harness, queue_end: int, l2_time: int) -> L1Context:
    return L1Context(queue_end, {i: h.bridge.queue_hash(i) for i in range(len(DEPOSITS))}, l2_time)


def _assert_same_root(h: Harness, state: State, raw: bytes, queue_end: int, l2_time: int = 0) -> bytes:
    ctx = _ctx(h, queue_end, l2_time)
    expected = apply_tx(copy_state(state), raw, ctx, h.config).post_root
    witnesses, post_root = build_tx_witnesses(copy_state(state), raw, ctx, h.config)
    assert post_root == expected
    onchain = h.verifier.apply_tx(state.tree.root, raw, witnesses, queue_end, l2_time)
    assert onchain == expected, f"tx={raw.hex()} queue_end={queue_end} l2_time={l2_time}"
    return onchain


@pytest.fixture(scope="module")
def config(h: Harness) -> ChainConfig:
    return h.config


@pytest.mark.parametrize(("kind", "flaw", "examples"), SCENARIOS)
def test_apply_tx__random_state_and_tx__verifier_root_equals_stf(
    h: Harness, kind: str, flaw: str, examples: int
) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases(h.config, kind, flaw))
    def check(case: tuple[State, bytes, int, int]) -> None:
        state, raw, queue_end, l2_time = case
        _assert_same_root(h, state, raw, queue_end, l2_time)

    check()


# ---- hand-picked cases the random search must not miss ----


def _funded(h: Harness) -> State:
    state = State()
    set_account(state, user_address(1), Account(1_000, 0))
    set_account(state, user_address(2), Account(5, 3))
    set_next_deposit_index(state, 1)
    set_markets(state, [MARKET, MARKET])
    return state


def _kinds_of(raw: bytes) -> str:
    try:
        return type(decode_tx(raw)).__name__
    except DecodeError:
        return "undecodable"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda h: encode_tx(sign_transfer(user_key(1), user_address(3), 10, 0, h.config)), id="transfer"
        ),
        pytest.param(
            lambda h: encode_tx(sign_withdraw(user_key(1), KEYLESS[1], 10, 0, h.config)), id="withdraw"
        ),
        pytest.param(
            lambda h: bytes([1]) + (1).to_bytes(8, "big") + DEPOSITS[1][0] + (1).to_bytes(32, "big"),
            id="deposit",
        ),
        pytest.param(
            lambda h: encode_tx(sign_transfer(user_key(1), user_address(1), 10, 0, h.config)), id="self"
        ),
        pytest.param(
            lambda h: encode_tx(sign_transfer(user_key(1), user_address(3), 0, 0, h.config)), id="zero"
        ),
        pytest.param(
            lambda h: encode_tx(sign_transfer(user_key(1), user_address(3), 1_001, 0, h.config)),
            id="overdraft",
        ),
        pytest.param(
            lambda h: encode_tx(sign_transfer(user_key(2), user_address(3), 1, 2, h.config)), id="stale_nonce"
        ),
        pytest.param(lambda h: b"", id="empty"),
        pytest.param(lambda h: b"\x02" * 145, id="short"),
    ],
)
def test_apply_tx__hand_picked__verifier_root_equals_stf(h: Harness, make: object) -> None:
    raw = make(h)  # type: ignore[operator]
    _assert_same_root(h, _funded(h), raw, 2)


def test_apply_tx__deep_tree__gas_recorded(h: Harness) -> None:
    """Gas of `apply_tx` on a state of 2**14 accounts (a realistic tree depth)."""
    state = _funded(h)
    for i in range(2**14):
        set_account(state, keccak(i.to_bytes(4, "big"))[:20], Account(i, 0))
    txs = {
        "transfer": encode_tx(sign_transfer(user_key(1), user_address(3), 10, 0, h.config)),
        "withdraw": encode_tx(sign_withdraw(user_key(1), KEYLESS[1], 10, 0, h.config)),
        "deposit": bytes([1]) + (1).to_bytes(8, "big") + DEPOSITS[1][0] + (1).to_bytes(32, "big"),
        "bad_signature": encode_tx(
            replace(sign_transfer(user_key(2), user_address(3), 1, 3, h.config), sender=user_address(1))
        ),
        "undecodable": b"\x07\x07",
    }
    for name, raw in txs.items():
        _assert_same_root(h, state, raw, 2)
        witnesses, _ = build_tx_witnesses(copy_state(state), raw, _ctx(h, 2, 0), h.config)
        gas = h.verifier.apply_tx_gas(state.tree.root, raw, witnesses, 2, 0)
        record_gas(f"verifier_apply_tx_{name}_16k_leaves", gas)
        assert gas < 1_000_000, (name, _kinds_of(raw))
