"""Each client's share (`sequencer.fairness`): the rate, the penalty for bad signatures, the bound."""

from __future__ import annotations

import pytest

from sequencer.errors import RateLimited
from sequencer.fairness import AccountRates, Fairness, FairnessLimits

A, B = ("127.0.0.1", 1), ("127.0.0.1", 2)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fairness(**limits: float) -> tuple[Fairness, Clock]:
    clock = Clock()
    return Fairness(FairnessLimits(**{"bytes_per_s": 100, "burst_bytes": 1000, **limits}), clock), clock  # type: ignore[arg-type]


def test_admit__within_burst_then_over__refused_with_the_wait_and_nothing_taken() -> None:
    fair, clock = fairness()
    fair.admit(A, 600)
    fair.admit(A, 300)
    with pytest.raises(RateLimited) as refused:
        fair.admit(A, 300)  # 100 left: 200 more bytes take 2 s at 100/s
    assert refused.value.retry_after_s == pytest.approx(2.0) and not refused.value.close
    fair.admit(B, 1000)  # another client has its own share
    clock.now = 2.0
    fair.admit(A, 300)  # refilled by exactly what was missing
    with pytest.raises(RateLimited):
        fair.admit(A, 1)
    assert fair.refused == 2


def test_admit__cancel__passes_the_rate_but_not_the_penalty() -> None:
    fair, _ = fairness()
    fair.admit(A, 1000)
    fair.admit(A, 500, cancel=True)  # the bucket is empty: a cancel passes all the same
    fair.bad_signature(A)
    with pytest.raises(RateLimited):
        fair.admit(A, 500, cancel=True)


def test_admit__body_larger_than_a_burst__waits_for_a_full_bucket_not_forever() -> None:
    fair, clock = fairness()
    fair.admit(A, 5000)  # a full bucket pays for it
    with pytest.raises(RateLimited) as refused:
        fair.admit(A, 5000)
    assert refused.value.retry_after_s == pytest.approx(10.0)
    clock.now = 10.0
    fair.admit(A, 5000)


def test_bad_signature__refused_for_the_penalty__doubling__capped__then_forgiven() -> None:
    fair, clock = fairness(penalty_s=1.0, max_penalty_s=3.0)
    fair.bad_signature(A)
    assert fair.penalized(A) and not fair.penalized(B)
    with pytest.raises(RateLimited) as refused:
        fair.admit(A, 1)
    assert refused.value.close and refused.value.retry_after_s == pytest.approx(1.0)
    clock.now = 1.0
    fair.admit(A, 1)
    fair.bad_signature(A)  # second offence: 2 s
    clock.now = 2.9
    assert fair.penalized(A)
    clock.now = 3.0
    assert not fair.penalized(A)
    fair.bad_signature(A)  # third: 4 s, capped at 3
    clock.now = 5.9
    assert fair.penalized(A)
    clock.now = 6.0
    assert not fair.penalized(A)


def test_host__offences_from_many_connections__its_new_connections_refused_old_ones_kept() -> None:
    fair, clock = fairness(host_offences=3, penalty_s=1.0)
    old = ("10.0.0.1", 9)
    fair.admit(old, 1)  # opened before the flood
    for port in range(3):
        fair.admit(("10.0.0.1", port), 1)
        fair.bad_signature(("10.0.0.1", port))
        fair.forget(("10.0.0.1", port))  # cut off
    with pytest.raises(RateLimited) as refused:
        fair.admit(("10.0.0.1", 0), 1)  # a new connection, even on a port used before
    assert refused.value.close
    fair.admit(old, 1)
    fair.admit(("10.0.0.2", 0), 1)  # another host
    clock.now = 1.0
    fair.admit(("10.0.0.1", 5), 1)  # the host's suspicion is over


def test_clients__bounded__least_recently_seen_forgotten_first() -> None:
    fair, _ = fairness(max_clients=2)
    fair.bad_signature(A)
    fair.admit(B, 1)
    fair.admit(("127.0.0.1", 3), 1)  # A is forgotten, penalty and all
    assert not fair.penalized(A)
    fair.admit(A, 1)


def test_limits__not_positive__refused() -> None:
    with pytest.raises(ValueError):
        Fairness(FairnessLimits(bytes_per_s=0))


def test_account_rates__over_its_share__refused_until_paid_back__others_untouched() -> None:
    clock = Clock()
    rates = AccountRates(100, 200, clock=clock)
    alice, bob = b"\x0a" * 20, b"\x0b" * 20
    rates.check([alice, bob])  # never seen: free
    rates.spend({alice: 250, bob: 200})  # alice 50 orders over her burst, bob exactly at it
    with pytest.raises(RateLimited) as refused:
        rates.check([bob, alice])
    assert refused.value.retry_after_s == pytest.approx(0.5) and not refused.value.close
    rates.check([bob])
    clock.now = 0.5
    rates.check([alice])  # paid back


def test_account_rates__bounded__least_recent_forgotten() -> None:
    rates = AccountRates(1, 1, max_accounts=1, clock=Clock())
    rates.spend({b"\x01" * 20: 5})
    rates.spend({b"\x02" * 20: 1})
    rates.check([b"\x01" * 20])  # forgotten, debt and all
