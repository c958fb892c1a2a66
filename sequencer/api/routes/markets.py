"""`/v1/markets`: the listed markets and their books."""

# No `from __future__ import annotations` here: FastAPI must see the `NodeDep` alias itself.
from typing import Annotated

from fastapi import APIRouter, Path, Query

from sequencer.api.deps import NodeDep
from sequencer.api.order_schemas import BookView, Level, MarketView
from sequencer.stf.errors import UnknownMarket

MAX_DEPTH = 1000
"""Most levels per side `GET /v1/markets/{id}/book` returns."""

router = APIRouter(prefix="/v1", tags=["markets"])


@router.get("/markets", response_model=list[MarketView])
async def get_markets(n: NodeDep) -> list[MarketView]:
    """Every listed market: parameters, live state (as of the mempool) and top of book."""
    out = []
    for market_id, market in enumerate(n.markets()):
        book = n.book(market_id)
        assert book is not None
        out.append(MarketView.of(market_id, market, book.best_bid(), book.best_ask(), len(book)))
    return out


@router.get("/markets/{market_id}/book", response_model=BookView)
async def get_book(
    market_id: Annotated[int, Path(ge=0, lt=2**16)],
    n: NodeDep,
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH)] = 20,
) -> BookView:
    """The `depth` best price levels of each side (price, total size), best first."""
    book = n.book(market_id)
    if book is None:
        raise UnknownMarket(market_id)
    bids, asks = book.depth(depth)
    return BookView(
        market=market_id,
        bids=[Level(price=p, size=s) for p, s in bids],
        asks=[Level(price=p, size=s) for p, s in asks],
    )
