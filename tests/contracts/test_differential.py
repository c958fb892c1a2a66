"""THE differential property: the Vyper FraudVerifier computes the Python state machine's root.

For every case, `FraudVerifier.apply_tx(pre_root, tx, witnesses, queue_end, l2_time)` must equal
the post root of `sequencer.stf.transition.apply_tx`, with the witnesses from
`prover.witness.build_tx_witnesses`. The cases are:

- every vector of `tests/stf/stf_vectors.py` and `tests/stf/exchange_vectors.py` (each type, valid
  and against each rule), whose post state is also checked against the vector's own;
- random states and transactions of every type (`exchange_strategies`): accounts with positions,
  markets, committees, order leaves; fills, bundles, cancels, oracle updates, funding,
  liquidations, deleverages, governance messages, transfers, withdrawals and deposits, valid and
  breaking rules, garbled bytes of each type's length;
- the v1 cases: transfers, withdrawals and deposits with every kind of bad signature and rule
  break, garbage and wrong lengths; the same transfers and withdrawals forced through the L1 queue
  (a ForcedTx: its inner transaction applies, or the entry is only consumed);
- a Cancel forced through the L1 queue and a Fill of its order after it in the same batch (the
  Fill refused by both), and random forced cancels (`exchange_strategies.forced_txs`).

The verifier runs on its own (`StubVerifier`): a chain answering the vectors' chain id, the rules
signing for the vectors' Rollup address, and a stub L1 queue set from each case's context (one
Bridge could not hold the vectors' conflicting queue entries). The Rollup-level proofs with the
real Bridge are `test_fraud.py`.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from contracts_harness import StubVerifier, record_gas
from exchange_fixtures import (
    ETH_PARAMS,
    NOW,
    TRADERS,
    acct,
    bundle_fill,
    cancel,
    leaves,
    market,
    member_key,
    order,
    price,
)
from exchange_strategies import SCENARIOS, Case
from exchange_vectors import EXCHANGE_VECTORS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stf_vectors import CONFIG, VECTORS, Vector, state_of

from sequencer.stf.codec import decode_tx, deposit_hash, encode_account, encode_tx, forced_hash
from sequencer.stf.constants import MAX_TOTAL_DEPOSITS, SECP256K1_N, SIDE_BUY, SIDE_SELL, UINT64_MAX
from sequencer.stf.eip712 import address_of, order_digest, sign_transfer, sign_withdraw
from sequencer.stf.errors import DecodeError
from sequencer.stf.hashing import keccak
from sequencer.stf.keys import account_key
from sequencer.stf.state import (
    State,
    copy_state,
    get_account,
    get_order_state,
    set_account,
    set_markets,
    set_next_deposit_index,
    set_withdrawal,
)
from sequencer.stf.transition import apply_tx
from sequencer.stf.types import (
    Account,
    ChainConfig,
    Committee,
    Deposit,
    Fill,
    ForcedTx,
    L1Context,
    Leg,
    Market,
    MarketParams,
    OracleUpdate,
)

GAS_LIMIT = 1_000_000


@pytest.fixture(scope="module")
def sv() -> StubVerifier:
    """One verifier-only deployment for the module."""
    return StubVerifier.create(CONFIG)


def _kind_of(raw: bytes) -> str:
    try:
        return type(decode_tx(raw)).__name__
    except DecodeError:
        return "undecodable"


def _assert_same_root(sv: StubVerifier, state: State, raw: bytes, ctx: L1Context) -> bytes:
    onchain, expected = sv.roots(state, raw, ctx)
    assert onchain == expected, f"{_kind_of(raw)} tx={raw.hex()} ctx={ctx}"
    return onchain


# ---- every vector ------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS + EXCHANGE_VECTORS, ids=lambda v: v.name)
def test_apply_tx__vector__verifier_root_equals_stf(sv: StubVerifier, vector: Vector) -> None:
    state = state_of(vector.pre)
    root = _assert_same_root(sv, state, vector.tx, vector.ctx)
    assert root == state_of(vector.post).tree.root


def test_apply_tx__forced_cancel_then_a_fill_of_its_order__both_apply_the_cancel_refuse_the_fill(
    sv: StubVerifier,
) -> None:
    """In one batch: the order's trader forces its Cancel through the L1 queue, then a Fill of the
    order comes: the verifier, like the state machine, consumes the entry, cancels the order and
    refuses the Fill (its root is the root after the cancel); a Fill before the cancel stands."""
    ask, bid = order(1, 0, SIDE_SELL, 100, 200), order(0, 0, SIDE_BUY, 100, 100)
    inner = encode_tx(cancel(1, ask))
    forced = encode_tx(ForcedTx(0, inner))
    fill = encode_tx(Fill(ask, bid, 100))
    ctx = L1Context(1, {0: forced_hash(0, inner)}, NOW)
    for batch, applied in (([forced, fill], [True, False]), ([fill, forced, fill], [True, True, False])):
        state = state_of(leaves({TRADERS[0]: acct(100_000), TRADERS[1]: acct(100_000)}))
        for raw, applies in zip(batch, applied, strict=True):
            before = state.tree.root
            root = _assert_same_root(sv, state, raw, ctx)
            assert (root != before) == applies
            assert apply_tx(state, raw, ctx, CONFIG).post_root == root
        leaf = get_order_state(state, order_digest(ask.order, CONFIG))
        assert leaf.cancelled and leaf.filled == 100 * (len(batch) - 2)


# ---- random exchange states and transactions of every type --------------------------------

EXAMPLES = {
    "fill": 50,
    "bundle_fill": 40,
    "cancel": 12,
    "oracle_update": 25,
    "funding": 20,
    "liquidate": 40,
    "deleverage": 40,
    "transfer_or_withdraw_with_positions": 25,
    "deposit_with_positions": 12,
    "l1message": 30,
    "forced": 40,
}
"""Hypothesis examples per scenario (py-evm is slow); the garbled ones get 4 each."""


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_apply_tx__random_exchange_case__verifier_root_equals_stf(sv: StubVerifier, scenario: str) -> None:
    @settings(
        max_examples=EXAMPLES.get(scenario, 4),
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=SCENARIOS[scenario])
    def check(case: Case) -> None:
        state, raw, ctx = case
        _assert_same_root(sv, state, raw, ctx)

    check()


# ---- the v1 cases: transfers, withdrawals and deposits without positions ------------------

N_KEYED_USERS = 6
UNRECOVERABLE_R = 5
"""`5**3 + 7` is not a square mod p: no secp256k1 point has x = 5."""


def user_key(i: int) -> bytes:
    return keccak(b"differential-user" + i.to_bytes(4, "big"))


def user_address(i: int) -> bytes:
    return address_of(user_key(i))


KEYLESS = [keccak(b"keyless" + bytes([i]))[:20] for i in range(3)]
DEPOSITS = [
    (user_address(1), 100),
    (user_address(2), 1),
    (KEYLESS[0], 2**100),
    (user_address(1), 7),
    (user_address(3), 123_456),
    (user_address(4), MAX_TOTAL_DEPOSITS - 2**100 - 200_000),
]
"""The L1 queue of the v1 cases (as a Bridge would hold it)."""
QUEUE = {i: deposit_hash(i, to, amount) for i, (to, amount) in enumerate(DEPOSITS)}


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

V1_SCENARIOS = (
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
    + [(k, "", 3) for k in OTHER_KINDS]
    + [("forced", f, 2 if f == "none" else 1) for f in SIGNED_FLAWS]
)
"""Every (transaction kind, flaw) pair of the v1 cases with its number of hypothesis examples."""


@st.composite
def v1_cases(draw: st.DrawFn, config: ChainConfig, kind: str, flaw: str) -> Case:
    state = draw(states())
    queue_end = draw(st.integers(0, len(DEPOSITS) + 1))
    if kind in ("transfer", "withdraw"):
        raw = draw(signed_txs(state, config, kind == "withdraw", flaw))
    elif kind == "forced":  # the signed transaction through the L1 queue, entry `index`
        index = draw(st.integers(0, len(DEPOSITS)))
        set_next_deposit_index(state, index)
        inner = draw(signed_txs(state, config, draw(st.booleans()), flaw))
        ctx = L1Context(index + draw(st.integers(1, 2)), {index: forced_hash(index, inner)}, draw(l2_times))
        return state, encode_tx(ForcedTx(index, inner)), ctx
    elif kind == "deposit":
        raw, queue_end = draw(deposit_txs(state, flaw))
    elif kind == "garbage":
        raw = draw(st.binary(max_size=300))
    elif kind == "unknown_type":
        raw = bytes([draw(st.sampled_from([0, 0x0D, 0x80, 255]))]) + draw(
            st.binary(min_size=60, max_size=160)
        )
    else:
        if kind == "wrong_length_signed":
            valid = draw(signed_txs(state, config, draw(st.booleans()), "none"))
        else:
            valid, queue_end = draw(deposit_txs(state, "none"))
        cut = draw(st.sampled_from([-32, -3, -1, 1, 2, 31]))
        raw = valid[:cut] if cut < 0 else valid + draw(st.binary(min_size=cut, max_size=cut))
    return state, raw, L1Context(queue_end, QUEUE, draw(l2_times))


@pytest.mark.parametrize(("kind", "flaw", "examples"), V1_SCENARIOS)
def test_apply_tx__random_v1_case__verifier_root_equals_stf(
    sv: StubVerifier, kind: str, flaw: str, examples: int
) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=v1_cases(sv.config, kind, flaw))
    def check(case: Case) -> None:
        state, raw, ctx = case
        _assert_same_root(sv, state, raw, ctx)

    check()


# ---- gas on a realistic tree ---------------------------------------------------------------


def _deep(state: State) -> State:
    """`state` with 2**14 more accounts (a realistic tree depth)."""
    deep = copy_state(state)
    for i in range(2**14):
        deep.tree.set(account_key(keccak(i.to_bytes(4, "big"))[:20]), encode_account(Account(i, 0)))
    return deep


def _eight_positions(long: bool) -> tuple[tuple[int, int, int, int], ...]:
    side = 1 if long else -1
    return tuple((m, side * 10, side * 1_000, 3) for m in range(8))


def _heaviest_cases() -> dict[str, tuple[State, bytes, L1Context]]:
    """The v1 cases of the deep-tree figures (a transfer, a withdrawal, a deposit, a bad signature,
    undecodable bytes), and the worst cases of the exchange: a Fill and a 4-leg BundleFill between
    accounts holding 8 positions each (16 markets: every leaf at its largest), an OracleUpdate with
    11 signatures."""
    ctx = L1Context(0, {}, NOW)
    funded = State()
    set_account(funded, user_address(1), Account(1_000, 0))
    set_account(funded, user_address(2), Account(5, 3))
    set_next_deposit_index(funded, 1)
    set_markets(funded, [MARKET, MARKET])
    funded = _deep(funded)
    to, amount = DEPOSITS[1]
    signed_by_2 = sign_transfer(user_key(2), user_address(3), 1, 3, CONFIG)
    cases = {
        "transfer": (funded, encode_tx(sign_transfer(user_key(1), user_address(3), 10, 0, CONFIG)), ctx),
        "withdraw": (funded, encode_tx(sign_withdraw(user_key(1), KEYLESS[1], 10, 0, CONFIG)), ctx),
        "deposit": (funded, encode_tx(Deposit(1, to, amount)), L1Context(2, QUEUE, NOW)),
        "bad_signature": (funded, encode_tx(replace(signed_by_2, sender=user_address(1))), ctx),
        "undecodable": (funded, b"\x07\x07", ctx),
    }

    listed = [market(ETH_PARAMS, 100, funding_index=5) for _ in range(16)]
    held = {TRADERS[0]: acct(10**9, 0, *_eight_positions(False))}
    for i in range(1, 5):
        held[TRADERS[i]] = acct(10**9, 0, *_eight_positions(True))
    traders = _deep(state_of(leaves(held, markets=listed, insurance=1_000)))
    legs = [Leg(m, SIDE_BUY, 101, 10) for m in range(4)]
    bundle = bundle_fill(0, legs, [order(1 + m, m, SIDE_SELL, 100, 10) for m in range(4)])
    fill = Fill(order(1, 0, SIDE_SELL, 100, 10), order(0, 0, SIDE_BUY, 100, 10), 10)
    cases["fill_8_positions"] = (traders, encode_tx(fill), ctx)
    cases["bundle_fill_4_legs_8_positions"] = (traders, encode_tx(bundle), ctx)

    members = tuple(address_of(member_key(i)) for i in range(15))
    oracle = _deep(state_of(leaves({}, markets=listed, committee=Committee(11, members))))
    prices = tuple(price(i, 3, 101, 101, NOW) for i in range(11))
    cases["oracle_update_11_signatures"] = (oracle, encode_tx(OracleUpdate(3, prices)), ctx)
    return cases


def test_apply_tx__heaviest_cases_on_a_deep_tree__gas_recorded(sv: StubVerifier) -> None:
    """Gas of `apply_tx` (as a transaction, calldata included) on 2**14 more accounts."""
    for name, (state, raw, ctx) in _heaviest_cases().items():
        root = _assert_same_root(sv, state, raw, ctx)
        assert (root != state.tree.root) == (name not in ("bad_signature", "undecodable")), name
        gas = sv.gas(state, raw, ctx)
        record_gas(f"verifier_apply_tx_{name}_16k_leaves", gas)
        assert gas < GAS_LIMIT, (name, gas)
