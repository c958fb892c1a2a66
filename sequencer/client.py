"""The trader SDK: sign transactions and orders (EIP-712, as a wallet would) and submit them.

```python
trader = TraderClient("http://127.0.0.1:8600", private_key, ChainConfig(chain_id, rollup))
# (`with TraderClient(...) as trader:` closes its connections at the end; so does `close()`)
# or several members of the sequencer set: it moves on when one cannot serve
trader = TraderClient(["http://127.0.0.1:8600", "http://127.0.0.1:8601"], private_key, config)
ack = trader.transfer(to, 1_000)          # signs with the next nonce, returns the acknowledgement
trader.wait_batched(ack.hash)             # until an L1 batch holds it
placed = trader.place_order(market=0, side=BUY, price=3_000, size=10_000)
placed.status, placed.fills               # "resting" / "filled" ..., the fills it made
trader.cancel(placed.order)
trader.account()["positions"]             # equity, margins, liquidation prices, open orders
```
Refusals raise `RequestRefused` with the API's machine-readable code (docs/protocol.md section 9);
when no member of the set can serve, `SequencersUnavailable` (a `RequestRefused`) names each URL's
failure (`sequencer.endpoints`: which answers move on, and why retrying a write is safe).
Every acknowledgement's receipt (the sequencer's signature) is checked before it is returned.
Integers in answers may come as decimal strings (above 2^53 - 1): read them with `int()`.

When sequencers refuse a trader's transactions, `L1ExitClient` forces a withdrawal, a transfer or
the cancel of a resting order through the L1 Bridge without asking any sequencer anything
(docs/protocol.md sections 3 and 6):

```python
exit = L1ExitClient.connect("http://127.0.0.1:8545", "var/deployment.json", private_key)
forced = exit.force_withdraw(l1_recipient, 1_000)   # the next nonce as L1 data shows it
forced = exit.force_cancel(placed.order)            # no fill of it after the batch consuming it
```
It raises the state machine's typed errors (`InvalidAmount`, `BadNonce`, `InsufficientBalance`,
`OrderCancelled`, ...) for a transaction that would not apply, and `ForceRefused` when the Bridge
refuses it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from sequencer.endpoints import Endpoints, refusal_of
from sequencer.endpoints import RequestRefused as RequestRefused  # the SDK's errors, re-exported
from sequencer.endpoints import SequencersUnavailable as SequencersUnavailable
from sequencer.receipts import verify_order_receipt, verify_receipt
from sequencer.stf.codec import encode_tx
from sequencer.stf.constants import SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import (
    address_of,
    sign_bundle,
    sign_cancel,
    sign_liquidate,
    sign_order,
    sign_transfer,
    sign_withdraw,
)
from sequencer.stf.errors import RollupError
from sequencer.stf.hashing import keccak
from sequencer.stf.types import (
    Bundle,
    Cancel,
    ChainConfig,
    ForcedTx,
    Leg,
    Order,
    Signature,
    SignedOrder,
    Transfer,
    Tx,
    Withdraw,
)

BUY, SELL = SIDE_BUY, SIDE_SELL
"""Order sides."""


@dataclass(frozen=True)
class Ack:
    """A sequencer's acknowledgement: the transaction is in its durable log."""

    hash: str
    seq: int
    sequencer: str
    receipt: str | None
    """The sequencer's signature over (hash, seq, sequencer); checked by `submit`."""


@dataclass(frozen=True)
class FillInfo:
    """One fill of an order or a bundle leg (a Fill transaction in the sequencer's log)."""

    tx_hash: str
    market: int
    price: int
    size: int
    taker_side: int
    maker: str
    taker: str
    status: str
    """pending, batched or dropped."""

    @classmethod
    def of(cls, data: dict[str, Any]) -> FillInfo:
        """From the API's fill view."""
        return cls(
            data["tx_hash"],
            int(data["market"]),
            int(data["price"]),
            int(data["size"]),
            int(data["taker_side"]),
            data["maker"],
            data["taker"],
            data["status"],
        )


@dataclass(frozen=True)
class PlacedOrder:
    """What placing an order did."""

    order: SignedOrder
    """The order as signed."""
    digest: str
    """Its id (EIP-712 digest)."""
    status: str
    """resting, partially_filled, filled, cancelled (an IOC's remainder) or refused."""
    resting: int
    """Size left in the book."""
    fills: tuple[FillInfo, ...]
    code: str | None
    """Why the rest was refused (status refused)."""
    sequencer: str | None = None
    """The sequencer that acknowledged it (its L1 address, 0x-hex): in a set, the leader whose key
    signed the receipt, whichever member relayed the answer."""

    @classmethod
    def of(cls, order: SignedOrder, data: dict[str, Any]) -> PlacedOrder:
        """From the API's order result."""
        return cls(
            order,
            data["digest"],
            data["status"],
            int(data["resting"]),
            tuple(FillInfo.of(f) for f in data["fills"]),
            data.get("code"),
            data.get("sequencer"),
        )


def signature_hex(sig: Signature) -> str:
    """`0x r || s || v`, as wallets print a signature."""
    return "0x" + (sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big") + bytes((sig.v,))).hex()


def order_fields(order: Order) -> dict[str, Any]:
    """The EIP-712 `Order` fields as the API takes them."""
    return {
        "trader": "0x" + order.trader.hex(),
        "market": order.market,
        "side": order.side,
        "price": order.price,
        "size": order.size,
        "flags": order.flags,
        "expiry": order.expiry,
        "salt": order.salt,
    }


def order_body(signed: SignedOrder) -> dict[str, Any]:
    """The body of `POST /v1/orders` (and one item of `/v1/orders/batch`)."""
    return {**order_fields(signed.order), "signature": signature_hex(signed.sig)}


_salts = itertools.count(int(time.time() * 1_000_000))
"""Fresh salts: distinct orders with otherwise equal fields."""


class TraderClient:
    """Signs and submits one trader's transactions to a sequencer set.

    `url` is one sequencer URL, a comma-separated list of them, or a sequence of URLs of members
    of one set: requests go to the member that answered last and move on to the next URL when
    one cannot serve (`sequencer.endpoints.Endpoints`, with `rounds` rounds over every URL).
    Every write may be sent again safely: the same signed order, cancel, bundle or transaction is
    answered with where the first one stands, never placed twice."""

    def __init__(
        self,
        url: str | Sequence[str],
        private_key: bytes,
        config: ChainConfig,
        *,
        timeout: float = 10.0,
        rounds: int = 3,
    ) -> None:
        self.endpoints = Endpoints(url, timeout=timeout, rounds=rounds)
        self.key = private_key
        self.address = address_of(private_key)
        self.config = config

    @classmethod
    def connect(
        cls, url: str | Sequence[str], private_key: bytes, *, timeout: float = 10.0, rounds: int = 3
    ) -> TraderClient:
        """A client whose chain config (the EIP-712 domain: chain id and Rollup address) is read
        from the set's `GET /v1/status`."""
        client = cls(url, private_key, ChainConfig(0, bytes(20)), timeout=timeout, rounds=rounds)
        try:
            status = client._get("/v1/status")
        except BaseException:
            client.close()
            raise
        client.config = ChainConfig(int(status["chain_id"]), bytes.fromhex(status["rollup"][2:]))
        return client

    @property
    def url(self) -> str:
        """The sequencer URL that answered last (where the next request goes first)."""
        return self.endpoints.url

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.endpoints.close()

    def __enter__(self) -> TraderClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _get(self, path: str, **kwargs: Any) -> Any:
        return self._check(self.endpoints.get(path, **kwargs))

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return self._check(self.endpoints.post(path, json=body))

    @staticmethod
    def _check(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise refusal_of(response)
        return response.json()

    def account(self, address: bytes | None = None) -> dict[str, Any]:
        """An account's confirmed and pending collateral and nonce, equity, margins, positions
        (with liquidation prices) and open orders."""
        addr = address or self.address
        data: dict[str, Any] = self._get(f"/v1/accounts/0x{addr.hex()}")
        return data

    def next_nonce(self) -> int:
        """The nonce the sequencer expects next (counting its mempool)."""
        return int(self.account()["pending_nonce"])

    def _receipt(self, data: dict[str, Any], orders: list[dict[str, Any]] | None = None) -> None:
        """Check an acknowledgement's receipt: a transaction's (`hash`, `seq`), or with `orders`
        the `OrderReceipt` over those order results and their fills. A node without an L1 key
        signs nothing (`receipt` null)."""
        if data.get("receipt") is None:
            return
        sequencer, signature = bytes.fromhex(data["sequencer"][2:]), bytes.fromhex(data["receipt"][2:])
        if orders is None:
            tx_hash = bytes.fromhex(data["hash"][2:])
            ok = verify_receipt(self.config, tx_hash, int(data["seq"]), sequencer, signature)
        else:
            digests = [bytes.fromhex(o["digest"][2:]) for o in orders]
            fills = [(bytes.fromhex(f["tx_hash"][2:]), int(f["seq"])) for o in orders for f in o["fills"]]
            ok = verify_order_receipt(self.config, digests, fills, sequencer, signature)
        if not ok:
            raise RollupError(f"sequencer {data['sequencer']} sent a receipt that does not verify")

    def submit(self, tx: Tx) -> Ack:
        """Submit an already signed transaction (encoded, to /v1/transactions)."""
        body = {"raw": "0x" + encode_tx(tx).hex()}
        data = self._post("/v1/transactions", body)
        self._receipt(data)
        return Ack(data["hash"], int(data["seq"]), data["sequencer"], data.get("receipt"))

    def transfer(self, to: bytes, amount: int, nonce: int | None = None) -> Ack:
        """Sign and submit a transfer (nonce from the sequencer unless given)."""
        n = self.next_nonce() if nonce is None else nonce
        return self.submit(sign_transfer(self.key, to, amount, n, self.config))

    def withdraw(self, l1_recipient: bytes, amount: int, nonce: int | None = None) -> tuple[Ack, int]:
        """Sign and submit a withdrawal to L1; returns the acknowledgement and the nonce used."""
        n = self.next_nonce() if nonce is None else nonce
        return self.submit(sign_withdraw(self.key, l1_recipient, amount, n, self.config)), n

    # ---- orders --------------------------------------------------------------------------

    def sign_order(
        self,
        market: int,
        side: int,
        price: int,
        size: int,
        *,
        flags: int = 0,
        expiry: int = 0,
        salt: int | None = None,
    ) -> SignedOrder:
        """An order of this trader, signed (a fresh salt unless given)."""
        order = Order(
            self.address, market, side, price, size, flags, expiry, next(_salts) if salt is None else salt
        )
        return sign_order(self.key, order, self.config)

    def place(self, signed: SignedOrder) -> PlacedOrder:
        """Place a signed order (`POST /v1/orders`): it matches at once and rests unless IOC."""
        data = self._post("/v1/orders", order_body(signed))
        self._receipt(data, [data])
        return PlacedOrder.of(signed, data)

    def place_order(
        self, market: int, side: int, price: int, size: int, *, flags: int = 0, expiry: int = 0
    ) -> PlacedOrder:
        """Sign and place an order."""
        return self.place(self.sign_order(market, side, price, size, flags=flags, expiry=expiry))

    def place_many(self, orders: Sequence[SignedOrder]) -> list[PlacedOrder | RequestRefused]:
        """Place up to 1,000 signed orders in one request and one durable commit
        (`POST /v1/orders/batch`); each gets its result or its refusal, in order."""
        body = {"orders": [order_body(o) for o in orders]}
        data = self._post("/v1/orders/batch", body)
        self._receipt(data, [item["result"] for item in data["results"] if item.get("error") is None])
        out: list[PlacedOrder | RequestRefused] = []
        for signed, item in zip(orders, data["results"], strict=True):
            if item.get("error") is not None:
                err = item["error"]
                out.append(RequestRefused(400, err["code"], err["message"]))
            else:
                out.append(PlacedOrder.of(signed, item["result"]))
        return out

    def cancel(self, order: Order | SignedOrder) -> dict[str, Any]:
        """Cancel one of this trader's orders (`POST /v1/orders/cancel`): out of the book at once,
        and a Cancel transaction so that it can never fill."""
        if isinstance(order, SignedOrder):
            order = order.order
        body = {
            "order": order_fields(order),
            "signature": signature_hex(sign_cancel(self.key, order, self.config)),
        }
        data: dict[str, Any] = self._post("/v1/orders/cancel", body)
        self._receipt(data)
        return data

    def place_bundle(self, legs: Sequence[Leg], *, expiry: int = 0) -> dict[str, Any]:
        """Sign and place a bundle (`POST /v1/bundles`): every leg fills whole against resting
        orders, or the bundle is refused."""
        bundle = Bundle(self.address, tuple(legs), expiry, next(_salts))
        body = {
            "trader": "0x" + self.address.hex(),
            "legs": [{"market": g.market, "side": g.side, "price": g.price, "size": g.size} for g in legs],
            "expiry": expiry,
            "salt": bundle.salt,
            "signature": signature_hex(sign_bundle(self.key, bundle, self.config)),
        }
        data: dict[str, Any] = self._post("/v1/bundles", body)
        self._receipt(data)
        return data

    def liquidate(self, account: bytes, market: int, size: int, nonce: int | None = None) -> Ack:
        """Take over `size` of an under-margined account's position at the mark (a signed
        Liquidate transaction; this trader is the liquidator)."""
        n = self.next_nonce() if nonce is None else nonce
        return self.submit(sign_liquidate(self.key, account, market, size, n, self.config))

    def risk(self) -> list[dict[str, Any]]:
        """Accounts below their maintenance margin, worst first, each with the liquidation that
        would restore it (`GET /v1/risk`: account, market, size, shortfall, bankrupt)."""
        data: dict[str, Any] = self._get("/v1/risk")
        candidates: list[dict[str, Any]] = data["candidates"]
        return candidates

    def order(self, digest: str) -> dict[str, Any]:
        """Where an order this sequencer accepted stands (`GET /v1/orders/{digest}`)."""
        data: dict[str, Any] = self._get(f"/v1/orders/{digest}")
        return data

    def markets(self) -> list[dict[str, Any]]:
        """Every listed market: parameters, prices, funding, breaker, top of book."""
        data: list[dict[str, Any]] = self._get("/v1/markets")
        return data

    def book(self, market: int, depth: int = 10) -> dict[str, Any]:
        """The `depth` best levels of each side of a market's book."""
        data: dict[str, Any] = self._get(f"/v1/markets/{market}/book", params={"depth": depth})
        return data

    def fills(self, account: bytes | None = None, limit: int = 100) -> list[FillInfo]:
        """An account's latest fills (this trader's by default), newest first."""
        addr = account or self.address
        data = self._get("/v1/fills", params={"account": "0x" + addr.hex(), "limit": limit})
        return [FillInfo.of(f) for f in data["fills"]]

    def tx_status(self, tx_hash: str) -> dict[str, Any]:
        """Where a transaction is (pending, batched with its batch index, dropped)."""
        data: dict[str, Any] = self._get(f"/v1/transactions/{tx_hash}")
        return data

    def wait_batched(self, tx_hash: str, timeout: float = 30.0) -> int:
        """Wait until an L1 batch holds the transaction; returns the batch index."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.tx_status(tx_hash)
            if status["status"] == "batched":
                return int(status["batch_index"])
            if status["status"] == "dropped":
                raise RollupError(f"transaction {tx_hash} was dropped: {status.get('reason')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"transaction {tx_hash} not batched after {timeout}s")
            time.sleep(0.05)


# ---- forcing a transaction through L1 ----------------------------------------------------


class ForceRefused(RollupError):
    """The L1 Bridge refused a forced transaction; `reason` is its revert reason."""

    code = "force_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(f"Bridge.force_tx refused: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class ForcedTxQueued:
    """A transaction queued by `Bridge.force_tx`: a batch must consume it within the Rollup's
    forced-inclusion deadline (applying it if it is valid then)."""

    queue_index: int
    """Its entry in the Bridge's queue."""
    nonce: int
    """The signed nonce (a withdrawal's claim names it); -1 for a Cancel (it has none) and for
    bytes queued unchecked."""
    tx_hash: str
    """The transaction hash of the ForcedTx as a batch carries it: keccak of `0x0c ||
    queue_index(8) || signed_tx` (what `GET /v1/batches/{i}` and the stream's `tx_hashes` list)."""
    inner_tx_hash: str
    """keccak of `signed_tx` alone: the hash a sequencer gives the same signed transaction sent to
    its API (never the hash of the forced one in a batch)."""
    l1_tx: str
    """The `force_tx` L1 transaction."""
    signed_tx: bytes
    """The inner transaction's bytes, as queued."""


class L1ExitClient:
    """Forces one trader's transfers, withdrawals and cancels through the L1 Bridge (`force_tx`),
    trusting no sequencer: the nonce and the checks come from the chain derived from L1 data
    alone."""

    def __init__(self, l1: Any, private_key: bytes, *, l1_sender: Any = None) -> None:
        """`l1` is a `contracts.l1.Web3L1`; `l1_sender` (a `contracts.bindings.Sender`) pays for
        the L1 transaction (default: `l1`'s own key). It need not be the trader."""
        self.l1 = l1
        self.key = private_key
        self.address = address_of(private_key)
        self.config: ChainConfig = l1.chain_config()
        self.l1_sender = l1_sender if l1_sender is not None else l1.sender
        if self.l1_sender is None:
            raise ValueError("an L1 key is needed to send Bridge.force_tx")

    @classmethod
    def connect(
        cls, l1_url: str, deployment_path: str, private_key: bytes, *, l1_key: bytes | None = None
    ) -> L1ExitClient:
        """Over an L1 JSON-RPC endpoint; the L1 transaction is paid by `l1_key` (default: the
        trader's own key, as an L1 account)."""
        from contracts.l1 import Web3L1, load_deployment

        l1 = Web3L1(
            l1_url, load_deployment(deployment_path), private_key="0x" + (l1_key or private_key).hex()
        )
        return cls(l1, private_key)

    def _l1_view(self) -> tuple[Any, Any]:
        """The state after every batch on L1 and every queue entry not consumed yet (those come
        first in the next batch), with the context to plan on it."""
        from sequencer.stf.chain import Chain
        from sequencer.stf.queue import due_queue, queue_context
        from sequencer.stf.state import copy_state
        from sequencer.stf.transition import apply_decoded

        chain = Chain(self.config)
        for event in self.l1.events(self.l1.deployment.deploy_block, self.l1.head_block()):
            chain.apply_event(event)
        state = copy_state(chain.state)
        l2_time = max(chain.tip_l2_time, self.l1.head_timestamp())
        due = due_queue(state, chain.queue, 1 << 30)
        ctx = queue_context(state, chain.queue, due, l2_time)
        for entry in due:
            apply_decoded(state, entry, ctx, self.config)
        return state, ctx

    def next_nonce(self) -> int:
        """The trader's next nonce as L1 data shows it (after the unconsumed queue entries)."""
        from sequencer.stf.state import get_account

        state, _ = self._l1_view()
        return get_account(state, self.address).nonce

    def force(self, tx: Transfer | Withdraw | Cancel, *, check: bool = True) -> ForcedTxQueued:
        """Queue a signed transaction with `Bridge.force_tx`. With `check`, first plan it on the
        L1-derived state and raise the rule it would break (`InvalidTransaction` family)."""
        if check:
            from sequencer.stf.transition import plan_tx

            state, ctx = self._l1_view()
            plan_tx(state, tx, ctx, self.config)
        return self.force_bytes(encode_tx(tx), -1 if isinstance(tx, Cancel) else tx.nonce)

    def force_bytes(self, raw: bytes, nonce: int = -1) -> ForcedTxQueued:
        """Queue any bytes with `Bridge.force_tx` (unchecked: on L2 they only consume their entry
        unless they are a valid Transfer, Withdraw or Cancel); raises `ForceRefused` with the
        Bridge's reason ("bridge: empty tx", "bridge: tx too long")."""
        from contracts.bindings import TransactionReverted

        try:
            result = self.l1.bridge.force_tx(self.l1_sender, raw)
        except TransactionReverted as exc:
            raise ForceRefused(exc.reason or "reverted") from exc
        (event,) = self.l1.bridge.forced_tx_queued_from_receipt(result.receipt)
        batched = encode_tx(ForcedTx(event.index, raw))
        return ForcedTxQueued(
            event.index,
            nonce,
            "0x" + keccak(batched).hex(),
            "0x" + keccak(raw).hex(),
            "0x" + result.tx_hash.hex(),
            raw,
        )

    def force_withdraw(self, l1_recipient: bytes, amount: int, nonce: int | None = None) -> ForcedTxQueued:
        """Sign a Withdraw to `l1_recipient` (with the next nonce as L1 shows it, unless given) and
        queue it on L1. Once a batch has consumed it and is final, claim it on the Bridge
        (`prover.withdrawals.build_withdrawal_claim`)."""
        # the amount and recipient rules are the state machine's: `force` plans it before sending
        n = self.next_nonce() if nonce is None else nonce
        return self.force(sign_withdraw(self.key, l1_recipient, amount, n, self.config))

    def force_transfer(self, to: bytes, amount: int, nonce: int | None = None) -> ForcedTxQueued:
        """Sign a Transfer to rollup account `to` and queue it on L1 (as `force_withdraw`)."""
        n = self.next_nonce() if nonce is None else nonce
        return self.force(sign_transfer(self.key, to, amount, n, self.config))

    def force_cancel(self, order: Order) -> ForcedTxQueued:
        """Sign a Cancel of one of this trader's orders and queue it on L1: once a batch has
        consumed it, no fill of the order comes after (a sequencer that sees it takes the order
        off its book at once). Raises `BadSignature` for another trader's order and
        `OrderCancelled` for one already cancelled as L1 data shows it."""
        return self.force(Cancel(order, sign_cancel(self.key, order, self.config)))
