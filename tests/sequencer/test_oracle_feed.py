"""The oracle feed's pieces: its updates are what the state machine accepts; its sources."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from exchange_fixtures import BTC, ETH, NOW, ctx, leaves, markets_with, member_key
from stf_vectors import CONFIG, state_of

from sequencer.oracle_feed import Committee, FileSource, RandomWalk
from sequencer.stf.codec import encode_tx
from sequencer.stf.state import get_markets
from sequencer.stf.transition import apply_tx


def test_committee_update__applies_with_threshold_members() -> None:
    committee = Committee(tuple(member_key(i) for i in range(3)), CONFIG)
    state = state_of(leaves({}))
    outcome = apply_tx(state, encode_tx(committee.update(BTC, 5_100, 5_050, NOW)), ctx(), CONFIG)
    assert outcome.applied, outcome.error
    btc = get_markets(state)[BTC]
    assert (btc.mark_price, btc.index_price, btc.oracle_time) == (5_100, 5_050, NOW)


def test_committee_update__below_threshold_refused() -> None:
    committee = Committee((member_key(0), member_key(1)), CONFIG)
    outcome = apply_tx(state_of(leaves({})), encode_tx(committee.update(ETH, 101, 100, NOW)), ctx(), CONFIG)
    assert not outcome.applied and outcome.error is not None and outcome.error.code == "invalid_oracle_update"


def test_random_walk__reproducible_bounded_steps() -> None:
    a, b = RandomWalk({ETH: 3_000}, step_bps=20, seed=9), RandomWalk({ETH: 3_000}, step_bps=20, seed=9)
    quotes = [a.quote(ETH, NOW + i) for i in range(50)]
    assert quotes == [b.quote(ETH, NOW + i) for i in range(50)]
    marks = [3_000] + [q[0] for q in quotes if q is not None]
    assert all(abs(y - x) <= x * 20 // 10_000 + 1 for x, y in itertools.pairwise(marks))
    assert a.quote(BTC, NOW) is None


def test_file_source__newest_line_per_market_and_torn_lines_ignored(tmp_path: Path) -> None:
    path = tmp_path / "prices.jsonl"
    assert FileSource(path).quote(ETH, NOW) is None
    path.write_text(
        "\n".join(
            [
                json.dumps({"market": 0, "mark": 100, "index": 99}),
                json.dumps({"market": 1, "mark": 5_000, "index": 5_001}),
                json.dumps({"market": 0, "mark": 102, "index": 101}),
                '{"market": 0, "mark": ',
            ]
        )
    )
    assert FileSource(path).quote(ETH, NOW) == (102, 101)
    assert FileSource(path).quote(BTC, NOW) == (5_000, 5_001)
    assert markets_with(ETH)  # the fixtures' markets are the ones quoted
