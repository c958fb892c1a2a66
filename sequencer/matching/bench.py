"""Micro-benchmark of `OrderBook.place` on a realistic stream: `python -m sequencer.matching.bench [N]`.

The stream (seeded, so every run measures the same work): about 70% limit orders resting 1-20
ticks from a mid price that random-walks, 10% of them post-only, all good for 5-120 s; about 30%
orders crossing the mid by up to 5 ticks, a third of them IOC, sized so that taking roughly
balances resting. The book settles near 3,000 resting orders over 30-60 levels a side. 50
traders, so self-trade prevention fires too. The clock advances one second per 100 orders and
`expire` sweeps every 1,000 orders.

Orders are built before timing; the timed loop is only `place` and `expire`. Rates are integers
(per second) computed from `perf_counter_ns`, medians over `repeats` fresh books.
"""

from __future__ import annotations

import random
import statistics
import sys
import time

from sequencer.matching.book import OrderBook
from sequencer.matching.types import BookOrder, OrderFlags, Side
from sequencer.stf.errors import InvalidTransaction

MARKET = 1
TICK = 1
LOT = 1
MID_START = 100_000
"""Mid price at the start, in ticks."""
ORDERS_PER_SECOND_OF_CLOCK = 100
EXPIRE_EVERY = 1_000


def make_stream(n_orders: int, seed: int = 1) -> list[tuple[BookOrder, int]]:
    """`n_orders` (order, now) pairs of the benchmark stream."""
    rng = random.Random(seed)
    traders = [rng.randbytes(20) for _ in range(50)]
    mid = MID_START
    stream = []
    for seq in range(n_orders):
        now = 1_000_000 + seq // ORDERS_PER_SECOND_OF_CLOCK
        if rng.randrange(10) == 0:
            mid += rng.choice((-1, 1))
        side = Side(rng.randrange(2))
        sign = 1 if side == Side.BUY else -1  # +: towards the other side
        flags = OrderFlags.NONE
        expiry = 0
        if rng.randrange(100) < 70:
            price = mid - sign * rng.randint(1, 20)
            size = rng.randint(1, 10) * LOT
            if rng.randrange(10) == 0:
                flags = OrderFlags.POST_ONLY
            # Quotes are short-lived (good-till-date), as market makers' are; without this the
            # quotes the mid walks away from pile up and the book grows without bound.
            expiry = now + rng.randint(5, 120)
        else:
            price = mid + sign * rng.randint(0, 5)
            size = rng.randint(1, 25) * LOT
            if rng.randrange(3) == 0:
                flags = OrderFlags.IOC
        order_id = rng.randbytes(32)
        trader = traders[rng.randrange(len(traders))]
        stream.append(
            (BookOrder(order_id, trader, MARKET, side, price * TICK, size, flags, expiry, seq), now)
        )
    return stream


def _run_once(stream: list[tuple[BookOrder, int]]) -> tuple[int, int, int, OrderBook]:
    """Place the whole stream into a fresh book; (elapsed ns, fills, refusals, book)."""
    book = OrderBook(MARKET, TICK, LOT)
    place = book.place
    fills = 0
    refused = 0
    start = time.perf_counter_ns()
    for i, (order, now) in enumerate(stream):
        try:
            fills += len(place(order, now).fills)
        except InvalidTransaction:  # post-only orders that would cross
            refused += 1
        if i % EXPIRE_EVERY == 0:
            book.expire(now)
    return time.perf_counter_ns() - start, fills, refused, book


def bench_book(n_orders: int = 100_000, repeats: int = 5) -> dict[str, int]:
    """Median placement and fill rates of `OrderBook` over `repeats` runs of an `n_orders` stream."""
    stream = make_stream(n_orders)
    runs = [_run_once(stream) for _ in range(repeats)]
    elapsed = statistics.median_low(ns for ns, _, _, _ in runs)
    _, fills, refused, book = runs[0]  # the stream is fixed, so every run gives the same counts
    bids, asks = book.depth(10**9)
    return {
        "orders": n_orders,
        "repeats": repeats,
        "median_ns": elapsed,
        "orders_per_s": n_orders * 10**9 // elapsed,
        "fills": fills,
        "fills_per_s": fills * 10**9 // elapsed,
        "ns_per_order": elapsed // n_orders,
        "refused_post_only": refused,
        "resting_at_end": len(book),
        "levels_at_end": len(bids) + len(asks),
    }


def main() -> None:
    """Print `bench_book`'s figures; the optional argument is the number of orders."""
    n_orders = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    for key, value in bench_book(n_orders).items():
        print(f"{key:>18}: {value:,}")


if __name__ == "__main__":
    main()
