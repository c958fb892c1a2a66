"""Bundles: a signed bundle filled whole against one resting maker per leg, or refused.

For each leg the best-priced live maker with enough size (not the trader's own) is chosen; the
whole BundleFill is planned with the state machine. A maker that cannot trade is removed from its
book (status `rejected`) and another is looked for; a refusal of the trader's (or a leg nobody
can fill: `no_match`) refuses the bundle. A bundle never rests.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from sequencer.errors import NoMatch, Overloaded
from sequencer.exchange.orderlog import OrderRow, fill_record
from sequencer.exchange.orders import maker_at_fault
from sequencer.exchange.records import BundleOutcome, FillRecord
from sequencer.exchange.requests import Finish, PlaceBundle, Run, answered
from sequencer.matching import OrderRemoved, RemoveReason, Side
from sequencer.stf.codec import encode_tx
from sequencer.stf.eip712 import bundle_digest, recover_sig
from sequencer.stf.errors import BadSignature, InvalidTransaction, RollupError
from sequencer.stf.margin import halted
from sequencer.stf.trading import check_order, check_unexpired, leg_market
from sequencer.stf.transition import plan_tx
from sequencer.stf.types import Bundle, BundleFill, L1Context, Signature

if TYPE_CHECKING:
    from sequencer.exchange.engine import Exchange

MAX_BUNDLE_ATTEMPTS = 8
"""Most times a bundle looks for makers again after a maker turned out unable to trade."""


def place_bundle(ex: Exchange, request: PlaceBundle, run: Run) -> Finish:
    """Place one signed bundle (a bundle placed before is answered as it stands)."""
    bundle, sig = request.bundle, request.sig
    digest = bundle_digest(bundle, ex.config)
    if digest in run.seen or ex.log.get(digest) is not None:
        return lambda _: bundle_outcome(ex, digest)
    if recover_sig(digest, sig) != bundle.trader:
        return answered(BadSignature(bundle.trader))
    try:
        h, records = work_bundle(ex, bundle, sig, digest, run)
    except RollupError as exc:
        return answered(exc)
    run.seen.add(digest)
    return lambda seqs: BundleOutcome(digest, h, seqs[h], tuple(replace(r, seq=seqs[h]) for r in records))


def work_bundle(
    ex: Exchange, bundle: Bundle, sig: Signature, digest: bytes, run: Run
) -> tuple[bytes, list[FillRecord]]:
    """Find a maker for every leg and stage the BundleFill; its hash and fills."""
    if not run.stage.room(False):
        raise Overloaded(f"mempool holds {len(ex.mempool)} transactions")
    check_unexpired(bundle.expiry, run.hi)
    lo_ctx = L1Context(queue_end=0, queue_hashes={}, l2_time=run.lo)
    for _ in range(MAX_BUNDLE_ATTEMPTS):
        makers: list[bytes] = []
        for i, leg in enumerate(bundle.legs):
            book = ex.market_book(leg.market, leg_market(leg, run.markets))
            ex.expire(book, run)
            found = book.find_maker(Side(leg.side), leg.price, leg.size, run.hi, exclude=bundle.trader)
            if found is None:
                raise NoMatch(f"no resting order fills leg {i} ({leg.size} at {leg.price} or better) whole")
            makers.append(found.order_id)
        signed_makers = tuple(ex.resting[d].signed for d in makers)
        culprit = None
        for d, maker in zip(makers, signed_makers, strict=True):
            try:
                check_order(maker.order, run.markets[maker.order.market], run.hi)
            except InvalidTransaction as exc:
                culprit = d
                run.rejected[d] = exc
                break
        if culprit is None:
            tx = BundleFill(bundle, sig, signed_makers)
            try:
                if any(halted(run.markets[leg.market], run.lo) for leg in bundle.legs):
                    plan_tx(ex.mempool.view, tx, lo_ctx, ex.config, signer_verified=True)
                h = run.stage.add(tx, signer_verified=True)
            except InvalidTransaction as exc:
                culprit = next(
                    (
                        d
                        for d, m in zip(makers, signed_makers, strict=True)
                        if maker_at_fault(exc, m.order.trader, d)
                    ),
                    None,
                )
                if culprit is None:
                    raise
                run.rejected[culprit] = exc
            else:
                return h, bundle_filled(ex, tx, h, digest, makers, run)
        market_id = ex.resting[culprit].signed.order.market
        ex.left_book(ex.books[market_id].remove(culprit, RemoveReason.REJECTED), run)
    raise NoMatch(f"{MAX_BUNDLE_ATTEMPTS} makers in a row could not trade")


def bundle_filled(
    ex: Exchange, tx: BundleFill, h: bytes, digest: bytes, makers: list[bytes], run: Run
) -> list[FillRecord]:
    """Take the legs' sizes off the makers, record the bundle and its fills; the fills."""
    bundle = tx.bundle
    records = []
    for i, (leg, maker_digest, maker) in enumerate(zip(bundle.legs, makers, tx.makers, strict=True)):
        record = FillRecord(
            tx_hash=h,
            seq=-1,
            market=leg.market,
            price=maker.order.price,
            size=leg.size,
            taker_side=leg.side,
            maker=maker.order.trader,
            taker=bundle.trader,
            maker_order=maker_digest,
            taker_order=digest,
        )
        records.append(record)
        run.messages.append(record)
        event = ex.books[leg.market].take(maker_digest, leg.size)
        if isinstance(event, OrderRemoved):
            ex.left_book(event, run)
        else:
            ex.reduced(event, run)
        run.writes.fill(h, i, maker.order.trader, bundle.trader, maker_digest, digest)
    run.writes.insert(
        OrderRow(digest, ex.next_seq(), "bundle", bundle.trader, -1, encode_tx(tx), "filled", None)
    )
    return records


def bundle_outcome(ex: Exchange, digest: bytes) -> BundleOutcome:
    """A bundle placed before, as the log has it."""
    fills = tuple(fill_record(f) for f in ex.log.fills_of_order(digest))
    return BundleOutcome(digest, fills[0].tx_hash, fills[0].seq, fills, known=True)
