"""Benchmark of the exchange's state machine: fills applied per second, beside their floor.

`stf_fills_per_s`: admitted fills (signatures checked when the orders were admitted, not again)
applied with a state root after every fill, one core, on a state of `n_accounts` funded accounts
trading two markets; resting maker orders are filled by several takers, as on a book. The floor,
measured alternately in the same run, is the same five leaf writes per fill (two accounts, two
orders, the insurance fund) and a root, with no rules: the tree work alone.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from sequencer.stf.codec import encode_tx, tx_hash
from sequencer.stf.eip712 import address_of, order_digest
from sequencer.stf.keys import account_key, insurance_key, order_key
from sequencer.stf.state import State, copy_state, set_account, set_committee, set_markets, state_root
from sequencer.stf.transition import apply_decoded
from sequencer.stf.types import (
    Account,
    ChainConfig,
    Committee,
    Fill,
    L1Context,
    Market,
    MarketParams,
    Order,
    Signature,
    SignedOrder,
)

CONFIG = ChainConfig(chain_id=31337, rollup=bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
NOW = 1_700_000_000
PARAMS = MarketParams(
    tick_size=1,
    lot_size=1_000,
    max_position=10**15,
    imr_bps=1000,
    mmr_bps=500,
    maker_fee_bps=-1,
    taker_fee_bps=5,
    liquidation_penalty_bps=100,
    breaker_bps=1500,
    max_funding_bps=50,
    funding_interval=60,
    breaker_window=60,
    max_oracle_age=3_600,
)
MARKS = (3_000, 60_000)
"""ETH and BTC marks, in the devnet's units (USD per size unit, see docs/protocol.md section 7)."""


def progress(message: str) -> None:
    """Show progress on long work (stderr)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class FillLoad:
    """A state and a sequence of fills that all apply on it, in order."""

    state: State
    fills: list[Fill]
    hashes: list[bytes]
    writes: list[tuple[bytes, bytes, bytes, bytes]]
    """The four account and order keys each fill writes (the insurance key is the fifth)."""


def fill_load(n_accounts: int, n_fills: int, seed: int = 5) -> FillLoad:
    """`n_accounts` funded traders on two markets and `n_fills` fills between them: each resting
    maker order (ten fills deep) is taken by a stream of takers. Signatures are placeholders: the
    benchmark applies fills as admitted ones (`signer_verified=True`), as the sequencer does."""
    rng = random.Random(seed)
    state = State()
    set_markets(
        state,
        [
            Market(
                PARAMS, mark_price=m, index_price=m, oracle_time=NOW, last_funding_time=NOW, funding_index=3
            )
            for m in MARKS
        ],
    )
    set_committee(state, Committee(1, (b"\x01" * 20,)))
    traders = [address_of(rng.getrandbits(256).to_bytes(32, "big")) for _ in range(n_accounts)]
    for address in traders:
        set_account(state, address, Account(10**15, 0))
    state_root(state)
    signature = Signature(1, 1, 27)
    fills: list[Fill] = []
    salt = 0
    while len(fills) < n_fills:
        market = rng.randrange(2)
        maker_side = rng.randrange(2)
        salt += 1
        maker = SignedOrder(
            Order(
                rng.choice(traders), market, maker_side, MARKS[market], 10 * PARAMS.lot_size * 10, 0, 0, salt
            ),
            signature,
        )
        for _ in range(10):
            taker_trader = rng.choice(traders)
            while taker_trader == maker.order.trader:
                taker_trader = rng.choice(traders)
            salt += 1
            taker = SignedOrder(
                Order(taker_trader, market, 1 - maker_side, MARKS[market], 10 * PARAMS.lot_size, 0, 0, salt),
                signature,
            )
            fills.append(Fill(maker, taker, 10 * PARAMS.lot_size))
    fills = fills[:n_fills]
    hashes = [tx_hash(encode_tx(f)) for f in fills]
    writes = [
        (
            account_key(f.maker.order.trader),
            account_key(f.taker.order.trader),
            order_key(order_digest(f.maker.order, CONFIG)),
            order_key(order_digest(f.taker.order, CONFIG)),
        )
        for f in fills
    ]
    return FillLoad(state, fills, hashes, writes)


def bench_stf_fills(n_accounts: int, n_fills: int, repeats: int) -> dict[str, Any]:
    """`stf_fills_per_s` and its tree-only floor, medians of alternating runs."""
    progress(f"fills: {n_accounts} accounts, {n_fills} fills")
    load = fill_load(n_accounts, n_fills)
    ctx = L1Context(0, {}, NOW + 1)

    def run() -> float:
        state = copy_state(load.state)
        started = time.perf_counter()
        for fill, h in zip(load.fills, load.hashes, strict=True):
            outcome = apply_decoded(state, fill, ctx, CONFIG, signer_verified=True, tx_hash=h)
            assert outcome.applied, outcome.error
        return n_fills / (time.perf_counter() - started)

    account_value = Account(10**15, 0).collateral.to_bytes(32, "big") + bytes(32) + bytes(128)
    order_value = bytes(64)
    insurance = insurance_key()

    def floor() -> float:
        tree = copy_state(load.state).tree
        started = time.perf_counter()
        for i, (a, b, c, d) in enumerate(load.writes):
            tree.set(a, account_value)
            tree.set(b, account_value)
            tree.set(c, order_value)
            tree.set(d, order_value)
            tree.set(insurance, i.to_bytes(32, "big"))
            _ = tree.root
        return n_fills / (time.perf_counter() - started)

    rates, floors = [], []
    for _ in range(repeats):
        rates.append(run())
        floors.append(floor())
    rate, floor_rate = statistics.median(rates), statistics.median(floors)
    ratio = statistics.median(r / f for r, f in zip(rates, floors, strict=True))
    progress(
        f"fills: {rate:,.0f}/s (floor {floor_rate:,.0f}, ratio {ratio:.2f}); runs {[round(r) for r in rates]}"
    )
    return {
        "stf_fills_per_s": round(rate),
        "stf_fills_floor_tree_only_per_s": round(floor_rate),
        "stf_fills_ratio_to_floor": round(ratio, 2),
    }


if __name__ == "__main__":
    import orjson

    from contracts.keccak import use_pysha3

    use_pysha3()

    print(orjson.dumps(bench_stf_fills(10_000, 20_000, 5)).decode())
