"""The routes' dependencies: the running node, as `NodeDep`, and what the API needs from it
(`NodeAPI`, which `sequencer.node.SequencerNode` provides)."""

# No `from __future__ import annotations` here: FastAPI must see the `NodeDep` alias itself.
from collections.abc import Callable
from typing import Annotated, Any, Protocol

from fastapi import Depends
from starlette.requests import HTTPConnection

from sequencer.exchange import BundleOutcome, CancelOutcome, FillRecord, OrderDetails, OrderOutcome
from sequencer.matching import OrderBook
from sequencer.stf.errors import RollupError
from sequencer.stf.margin import Markets
from sequencer.stf.types import Bundle, Cancel, Signature, SignedOrder, Tx
from sequencer.store import StoredTx
from sequencer.stream import Stream
from sequencer.views import AccountView, BatchView, RiskView, StatusView


class NodeAPI(Protocol):
    """What the API needs from a running sequencer node."""

    def forward_url(self) -> str | None:
        """The leader's URL while this node is a member of a set that does not lead."""
        ...

    @property
    def member_name(self) -> str:
        """This node's name in its set."""
        ...

    def log_position(self) -> int | None:
        """The position of the set's log this node's state holds (None: not in a set)."""
        ...

    @property
    def address(self) -> bytes:
        """The sequencer's L1 address."""
        ...

    async def admit_tx(self, tx: Tx | bytes) -> tuple[bytes, int]:
        """Admit one transaction durably in the next admission round; return (hash, seq) or raise
        a RollupError."""
        ...

    async def admit_txs(
        self, items: list[Tx | bytes], label: str = "batch"
    ) -> list[tuple[bytes, int] | RollupError]:
        """Admit several transactions in the next admission round (one durable commit); one
        result per item."""
        ...

    async def admit_orders(self, orders: list[SignedOrder]) -> list[OrderOutcome | RollupError]:
        """Place orders in the next admission round (one durable commit); one outcome or error
        per order."""
        ...

    def place_orders_now(
        self,
        orders: list[SignedOrder],
        reply: Callable[[list[OrderOutcome | RollupError] | BaseException], None],
    ) -> None:
        """`admit_orders` answered through `reply`, called by the admission round itself."""
        ...

    async def admit_cancel(self, tx: Cancel) -> CancelOutcome:
        """Admit a signed Cancel and take the order out of its book (urgent class)."""
        ...

    def cancel_now(self, tx: Cancel, reply: Callable[[CancelOutcome | BaseException], None]) -> None:
        """`admit_cancel` answered through `reply`, called by the admission round itself."""
        ...

    async def admit_bundle(self, bundle: Bundle, sig: Signature) -> BundleOutcome:
        """Fill a signed bundle whole, or refuse it."""
        ...

    def receipt(self, tx_hash: bytes, seq: int) -> bytes | None:
        """The signed acknowledgement of a logged transaction."""
        ...

    def batch_receipt(self, items: list[tuple[bytes, int]]) -> bytes | None:
        """One signed acknowledgement of several (hash, seq), in order."""
        ...

    def order_receipt(self, orders: list[bytes], items: list[tuple[bytes, int]]) -> bytes | None:
        """One signed acknowledgement of placed orders (digests) and their fills, in order."""
        ...

    def tx_status(self, tx_hash: bytes) -> StoredTx | None:
        """The log row of a transaction."""
        ...

    def account_view(self, address: bytes) -> AccountView:
        """Collateral and nonce, confirmed and pending."""
        ...

    def batch_view(self, index: int) -> BatchView | None:
        """A batch on L1."""
        ...

    def status_view(self) -> StatusView:
        """The node at a glance."""
        ...

    def risk_view(self) -> RiskView:
        """Accounts below their maintenance margin, with the liquidation that would help."""
        ...

    def order_details(self, digest: bytes) -> OrderDetails | None:
        """An order the exchange accepted."""
        ...

    def fills_of(self, account: bytes, limit: int, before_seq: int | None) -> list[FillRecord]:
        """An account's latest fills, newest first."""
        ...

    def markets(self) -> Markets:
        """The listed markets (as of the mempool)."""
        ...

    def book(self, market_id: int) -> OrderBook | None:
        """The book of a listed market."""
        ...

    def health(self) -> dict[str, Any]:
        """Liveness facts (L1 reachable, loops alive)."""
        ...

    @property
    def stream(self) -> Stream:
        """Chain events for WebSocket subscribers."""
        ...


async def get_node(conn: HTTPConnection) -> NodeAPI:
    """The node the application serves (`create_app` keeps it in the app's state)."""
    # async: FastAPI runs a plain `def` dependency in a worker thread, once per request
    node: NodeAPI = conn.app.state.node
    return node


NodeDep = Annotated[NodeAPI, Depends(get_node)]
