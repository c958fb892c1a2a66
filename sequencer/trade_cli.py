"""`rollup trade`: a trader's command line over the SDK (`sequencer.client.TraderClient`).

Every command prints one JSON document on stdout; a refusal prints `{"error": {"code",
"message"}}` and exits with status 1. The chain id and the Rollup address (the EIP-712 domain)
are read from the sequencer's `/v1/status`; the key comes from `--key` or `ROLLUP_KEY`.
`--sequencer` takes several members of the sequencer set (repeated, or comma-separated): each
request goes to the one that answered last and moves on when one cannot serve
(`sequencer.endpoints`); when none can, the error names each URL's failure.

    rollup trade --key 0x… markets
    rollup trade --sequencer http://127.0.0.1:8600,http://127.0.0.1:8601 --key 0x… account
    rollup trade --key 0x… buy 0 3000 10000            # market 0, price 3000, size 10000
    rollup trade --key 0x… sell 0 3010 10000 --post-only
    rollup trade --key 0x… market-sell 0 5000 --slippage-bps 100
    rollup trade --key 0x… cancel 0x<order digest>
    rollup trade --key 0x… account | fills | book 0
    rollup trade --key 0x… liquidate 0x<account> 0 1000
    rollup trade --key 0x… transfer 0x<to> 1000000 | withdraw 0x<l1 recipient> 1000000
    rollup trade --key 0x… deposit 1000000 --l1-url http://127.0.0.1:8545 --deployment var/deployment.json
    rollup trade --key 0x… force-withdraw 0x<l1 recipient> 1000000 --l1-url … --deployment …
    rollup trade --key 0x… force-cancel --market 0 --side sell --price 3010 --size 10000 --salt 7 \
        --l1-url … --deployment …
    rollup trade --key 0x… force-cancel --digest 0x<order digest> --l1-url … --deployment …
    rollup trade --key 0x… freeze --l1-url … --deployment …
    rollup trade --key 0x… escape [--recipient 0x<l1 address>] [--wait] --l1-url … --deployment …
    rollup trade --key 0x… refund --l1-url … --deployment …

`force-withdraw` asks no sequencer anything: it signs a Withdraw with the next nonce as L1 data
shows it and queues it with `Bridge.force_tx` (paid by `--l1-key`, default the trader's own key),
so that censoring sequencers must still include it (docs/protocol.md section 6). It prints
`tx_hash`, the hash of the transaction as a batch will carry it (the ForcedTx wrapping the signed
Withdraw, docs/protocol.md section 3, "Transaction hash"), and `inner_tx_hash`, the signed
Withdraw's own. `force-cancel` signs a Cancel of one of the trader's orders and queues it the same
way: given the order's fields it asks no sequencer anything; given `--digest` it reads the fields
from the sequencer (`GET /v1/orders/{digest}`) and checks that they hash to that digest.

The escape hatch (docs/protocol.md section 12) asks no sequencer either: `freeze` freezes the
Rollup once no batch was appended for its escape delay while a queue entry is overdue; `escape`
re-derives the frozen state from L1 data, proves this account's leaves and registers its exit
during the exit window (claiming first the account's withdrawals not paid yet), or, once the window
is over, collects the payout (`--wait`: register, wait for the window to end, collect); `refund`
pays back this key's deposits that no batch consumed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import orjson

from contracts.keccak import use_pysha3
from sequencer.client import BUY, SELL, L1ExitClient, PlacedOrder, RequestRefused, TraderClient
from sequencer.endpoints import add_sequencer_argument, sequencer_urls
from sequencer.escape_client import EscapeClient
from sequencer.stf.constants import FLAG_IOC, FLAG_POST_ONLY, FLAG_REDUCE_ONLY, SIDE_BUY, SIDE_SELL
from sequencer.stf.eip712 import address_of, order_digest
from sequencer.stf.errors import RollupError
from sequencer.stf.types import Order


def _print(data: Any) -> None:
    print(orjson.dumps(data, default=str).decode())


def _placed(p: PlacedOrder) -> dict[str, Any]:
    return {
        "digest": p.digest,
        "status": p.status,
        "resting": p.resting,
        "code": p.code,
        "fills": [f.__dict__ for f in p.fills],
    }


def _address(text: str) -> bytes:
    raw = bytes.fromhex(text.removeprefix("0x"))
    if len(raw) != 20:
        raise SystemExit(f"rollup trade: {text!r} is not a 20-byte address")
    return raw


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollup trade", description="Trade on a sequencer.")
    add_sequencer_argument(parser)
    parser.add_argument(
        "--key", default=os.environ.get("ROLLUP_KEY", ""), help="hex private key (or ROLLUP_KEY)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("markets", help="listed markets, prices, funding, top of book")
    book = sub.add_parser("book", help="a market's book")
    book.add_argument("market", type=int)
    book.add_argument("--depth", type=int, default=10)
    account = sub.add_parser("account", help="collateral, equity, margins, positions, open orders")
    account.add_argument("address", nargs="?", default=None)
    sub.add_parser("fills", help="this trader's latest fills")
    for side in ("buy", "sell"):
        order = sub.add_parser(side, help=f"a limit {side} order")
        order.add_argument("market", type=int)
        order.add_argument("price", type=int)
        order.add_argument("size", type=int)
        order.add_argument("--post-only", action="store_true")
        order.add_argument("--reduce-only", action="store_true")
        order.add_argument("--ioc", action="store_true")
        order.add_argument("--expiry", type=int, default=0, help="unix second from which it is dead")
    for side in ("market-buy", "market-sell"):
        order = sub.add_parser(side, help=f"an immediate-or-cancel {side.split('-')[1]} within a slippage")
        order.add_argument("market", type=int)
        order.add_argument("size", type=int)
        order.add_argument("--slippage-bps", type=int, default=100, help="limit around the mark")
        order.add_argument("--reduce-only", action="store_true")
    cancel = sub.add_parser("cancel", help="cancel one of this trader's orders by digest")
    cancel.add_argument("digest")
    liquidate = sub.add_parser("liquidate", help="take over part of an under-margined position")
    liquidate.add_argument("account")
    liquidate.add_argument("market", type=int)
    liquidate.add_argument("size", type=int)
    transfer = sub.add_parser("transfer", help="move collateral to another rollup account")
    transfer.add_argument("to")
    transfer.add_argument("amount", type=int)
    withdraw = sub.add_parser("withdraw", help="move collateral out to an L1 address")
    withdraw.add_argument("to")
    withdraw.add_argument("amount", type=int)
    deposit = sub.add_parser("deposit", help="deposit collateral from this key's L1 account")
    deposit.add_argument("amount", type=int)
    deposit.add_argument("--l1-url", default="http://127.0.0.1:8545")
    deposit.add_argument("--deployment", default="var/deployment.json")
    force = sub.add_parser(
        "force-withdraw", help="withdraw to an L1 address through the L1 Bridge, without any sequencer"
    )
    force.add_argument("to")
    force.add_argument("amount", type=int)
    force.add_argument("--nonce", type=int, default=None, help="default: the next nonce as L1 shows it")
    force_cancel = sub.add_parser("force-cancel", help="cancel an order of this trader through the L1 Bridge")
    force_cancel.add_argument("--digest", default=None, help="read the order's fields from the sequencer")
    force_cancel.add_argument("--side", choices=("buy", "sell"))
    for field in ("market", "price", "size"):
        force_cancel.add_argument(f"--{field}", type=int)
    for field in ("flags", "expiry", "salt"):
        force_cancel.add_argument(f"--{field}", type=int, default=0)
    freeze = sub.add_parser("freeze", help="freeze a Rollup whose sequencers are gone (the escape hatch)")
    escape = sub.add_parser(
        "escape", help="exit a frozen Rollup: register this account's exit, or collect it after the window"
    )
    escape.add_argument("--recipient", default=None, help="L1 address paid (default: this key's)")
    escape.add_argument("--wait", action="store_true", help="register, wait for the window to end, collect")
    refund = sub.add_parser(
        "refund", help="get back this key's deposits that no batch consumed (once frozen)"
    )
    for forced in (force, force_cancel, freeze, escape, refund):
        forced.add_argument("--l1-key", default="", help="hex key paying the L1 transaction (default --key)")
        forced.add_argument("--l1-url", default="http://127.0.0.1:8545")
        forced.add_argument("--deployment", default="var/deployment.json")
    return parser


def _order_of(o: dict[str, Any]) -> Order:
    """An Order from its fields as the API gives them (`GET /v1/orders/{digest}`)."""
    if o["kind"] != "order":
        raise SystemExit("rollup trade: only orders can be cancelled")
    fields = ("market", "side", "price", "size", "flags", "expiry", "salt")  # big ones as strings
    return Order(_address(o["trader"]), *(int(o[f]) for f in fields))


def run(args: argparse.Namespace) -> Any:
    """Execute one parsed command; returns what to print."""
    if not args.key:
        raise SystemExit("rollup trade: give --key or set ROLLUP_KEY")
    key = bytes.fromhex(args.key.removeprefix("0x"))
    if args.command == "force-withdraw":  # the sequencers may be the problem: L1 only
        return _force_withdraw(args, key)
    if args.command == "force-cancel" and args.digest is None:  # the order's fields: L1 only
        return _force_cancel(args, key, None)
    if args.command in ("freeze", "escape", "refund"):  # the sequencers are gone: L1 only
        return _escape(args, key)
    trader = TraderClient.connect(sequencer_urls(args), key)
    try:
        command = args.command
        if command == "markets":
            return trader.markets()
        if command == "book":
            return trader.book(args.market, args.depth)
        if command == "account":
            return trader.account(None if args.address is None else _address(args.address))
        if command == "fills":
            return [f.__dict__ for f in trader.fills()]
        if command in ("buy", "sell"):
            flags = (FLAG_POST_ONLY if args.post_only else 0) | (FLAG_REDUCE_ONLY if args.reduce_only else 0)
            flags |= FLAG_IOC if args.ioc else 0
            side = BUY if command == "buy" else SELL
            return _placed(
                trader.place_order(args.market, side, args.price, args.size, flags=flags, expiry=args.expiry)
            )
        if command in ("market-buy", "market-sell"):
            market = next(m for m in trader.markets() if m["id"] == args.market)
            mark, tick = int(market["mark_price"]), int(market["tick_size"])
            buy = command == "market-buy"
            limit = (
                mark * (10_000 + args.slippage_bps) // 10_000
                if buy
                else mark * (10_000 - args.slippage_bps) // 10_000
            )
            limit = max(tick, limit - limit % tick + (tick if buy and limit % tick else 0))
            flags = FLAG_IOC | (FLAG_REDUCE_ONLY if args.reduce_only else 0)
            return _placed(
                trader.place_order(args.market, BUY if buy else SELL, limit, args.size, flags=flags)
            )
        if command == "cancel":
            return trader.cancel(_order_of(trader.order(args.digest)))
        if command == "force-cancel":  # the fields as the sequencer has them, checked on the digest
            return _force_cancel(args, key, _order_of(trader.order(args.digest)))
        if command == "liquidate":
            return trader.liquidate(_address(args.account), args.market, args.size).__dict__
        if command == "transfer":
            return trader.transfer(_address(args.to), args.amount).__dict__
        if command == "withdraw":
            ack, nonce = trader.withdraw(_address(args.to), args.amount)
            return {**ack.__dict__, "nonce": nonce}
        if command == "deposit":
            return _deposit(args, key)
        raise SystemExit(f"rollup trade: unknown command {command}")
    finally:
        trader.close()


def _deposit(args: argparse.Namespace, key: bytes) -> dict[str, Any]:
    from web3 import Web3

    from contracts.bindings import BridgeClient, Sender, TokenClient
    from contracts.l1 import load_deployment

    deployment = load_deployment(args.deployment)
    w3 = Web3(Web3.HTTPProvider(args.l1_url, request_kwargs={"timeout": 60}))
    sender = Sender.from_key(key)
    TokenClient(w3, deployment.token).approve(sender, deployment.bridge, args.amount)
    result = BridgeClient(w3, deployment.bridge).deposit(sender, sender.address, args.amount)
    return {"l1_tx": "0x" + result.tx_hash.hex(), "amount": args.amount, "to": sender.address}


def _force_withdraw(args: argparse.Namespace, key: bytes) -> dict[str, Any]:
    l1_key = bytes.fromhex(args.l1_key.removeprefix("0x")) if args.l1_key else None
    client = L1ExitClient.connect(args.l1_url, args.deployment, key, l1_key=l1_key)
    forced = client.force_withdraw(_address(args.to), args.amount, args.nonce)
    return {
        "queue_index": forced.queue_index,
        "nonce": forced.nonce,
        "tx_hash": forced.tx_hash,  # the ForcedTx as batched
        "inner_tx_hash": forced.inner_tx_hash,  # the signed Withdraw alone
        "l1_tx": forced.l1_tx,
        "from": "0x" + client.address.hex(),
        "to": args.to,
        "amount": args.amount,
    }


def _force_cancel(args: argparse.Namespace, key: bytes, order: Order | None) -> dict[str, Any]:
    l1_key = bytes.fromhex(args.l1_key.removeprefix("0x")) if args.l1_key else None
    client = L1ExitClient.connect(args.l1_url, args.deployment, key, l1_key=l1_key)
    if order is None:
        missing = [f for f in ("market", "side", "price", "size") if getattr(args, f) is None]
        if missing:
            raise SystemExit(f"rollup trade: force-cancel needs --digest or the order's fields ({missing})")
        side = SIDE_BUY if args.side == "buy" else SIDE_SELL
        order = Order(
            address_of(key), args.market, side, args.price, args.size, args.flags, args.expiry, args.salt
        )
    digest = "0x" + order_digest(order, client.config).hex()
    if args.digest is not None and digest != args.digest.lower():
        raise SystemExit(f"rollup trade: the order's fields hash to {digest}, not {args.digest}")
    forced = client.force_cancel(order)
    return {
        "queue_index": forced.queue_index,
        "digest": digest,
        "tx_hash": forced.tx_hash,  # the ForcedTx as batched
        "inner_tx_hash": forced.inner_tx_hash,  # the signed Cancel alone
        "l1_tx": forced.l1_tx,
        "trader": "0x" + order.trader.hex(),
    }


def _escape(args: argparse.Namespace, key: bytes) -> dict[str, Any]:
    l1_key = bytes.fromhex(args.l1_key.removeprefix("0x")) if args.l1_key else None
    client = EscapeClient.connect(args.l1_url, args.deployment, key, l1_key=l1_key)
    if args.command == "freeze":
        frozen = client.freeze()
        return {
            "frozen_at": frozen.timestamp,
            "batch_count": frozen.batch_count,
            "post_root": "0x" + frozen.post_root.hex(),
            "queue_end": frozen.queue_end,
            "l1_tx": "0x" + frozen.meta.tx_hash.hex(),
        }
    if args.command == "refund":
        return {
            "refunds": [
                {
                    "index": r.index,
                    "depositor": "0x" + r.depositor.hex(),
                    "amount": r.amount,
                    "l1_tx": "0x" + r.l1_tx.hex(),
                }
                for r in client.refund_deposits()
            ]
        }
    out: dict[str, Any] = {"account": "0x" + client.address.hex()}
    if not client.exit_info().registered:
        recipient = None if args.recipient is None else _address(args.recipient)
        chain = client.derive()  # from L1 data alone
        withdrawals = client.claim_withdrawals(chain)
        registered = client.register(recipient, client.proof(chain))
        out.update(
            registered={
                "equity": registered.equity,
                "claim": registered.claim,
                "l1_tx": "0x" + registered.l1_tx.hex(),
            },
            recipient="0x" + registered.recipient.hex(),
            window_ends=client.window_ends(),
            withdrawals_claimed=[
                {"nonce": w.nonce, "amount": w.amount, "recipient": "0x" + w.recipient.hex()}
                for w in withdrawals
            ],
        )
        if not args.wait:
            return out
    paid = client.pay(wait_s=max(0, client.window_ends() - time.time()) + 60 if args.wait else 0.0)
    out.update(
        paid={"claim": paid.claim, "amount": paid.amount, "l1_tx": "0x" + paid.l1_tx.hex()},
        recipient="0x" + paid.recipient.hex(),
    )
    return out


def main(argv: list[str] | None = None) -> None:
    """`rollup trade ...`."""
    use_pysha3()
    args = _parser().parse_args(argv)
    try:
        _print(run(args))
    except RequestRefused as exc:
        _print({"error": {"code": exc.code, "message": exc.message, "status": exc.status}})
        sys.exit(1)
    except RollupError as exc:  # refused before any request (an L1 exit's checks, the Bridge)
        _print({"error": {"code": exc.code, "message": str(exc)}})
        sys.exit(1)
