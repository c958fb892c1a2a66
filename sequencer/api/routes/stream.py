"""`/v1/stream`: chain and exchange events over a WebSocket."""

# No `from __future__ import annotations` here: FastAPI must see the `NodeDep` alias itself.
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from sequencer.api.deps import NodeDep

router = APIRouter(prefix="/v1", tags=["state"])


@router.websocket("/stream")
async def stream(ws: WebSocket, n: NodeDep) -> None:
    """Events as JSON: `batch` (index, post_root, sequencer, tx_hashes, valid), `revert`,
    `fill` (market, price, size, taker_side, maker, taker, maker_order, taker_order, tx_hash,
    seq), `book` (change added / reduced / removed, market, order, trader, side, price, size,
    remaining or reason) and `book_snapshot` (market, bids, asks) after the books are rebuilt."""
    await ws.accept()
    queue = n.stream.subscribe()
    try:
        while True:
            message = await queue.get()
            if message is None:  # fell too far behind
                await ws.close(code=1013)
                return
            await ws.send_json(message)
    except WebSocketDisconnect:
        return
    finally:
        n.stream.unsubscribe(queue)
