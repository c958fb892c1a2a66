"""A lying sequencer, for the demo and the fault tests: never part of a production node.

It is an honest `SequencerNode` with two parts replaced: its poster (`FaultyPoster`) commits a
wrong post-state root for one transaction of its next batch (by position, or the first of a
type), for one batch; and its chain (`TrustingChain`) applies its own batches without checking
their roots, so that it keeps building on the batch it lied in, as a lying sequencer would. Its
watchers see the lie and prove it.

`python -m devnet.faulty` takes the sequencer's flags (`sequencer.main`) and the fault's:
`--fault-post-root-offset K` or `--fault-tx-type NAME`.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import Any

from contracts.keccak import use_pysha3
from contracts.logs import get_logger
from sequencer.builder import BuiltBatch
from sequencer.main import argument_parser, build_node, serve, settings_from
from sequencer.node import SequencerNode
from sequencer.poster import L1Writer, Poster
from sequencer.stf.chain import Chain
from sequencer.stf.constants import TX_TYPE_NAMES
from sequencer.stf.hashing import keccak
from sequencer.stf.l1types import L1Batch, L1Reader
from sequencer.stf.transition import apply_batch
from sequencer.stf.types import ChainConfig
from sequencer.store import Store

log = get_logger("sequencer")

TX_TYPE_BYTES = {name: byte for byte, name in TX_TYPE_NAMES.items()}
"""Type byte of each transaction type name (for `--fault-tx-type`)."""


@dataclass(frozen=True)
class Fault:
    """Which root to corrupt, and in how many batches."""

    root_at: int = -1
    """Corrupt the post-root of this transaction of the batch (-1: none by position)."""
    tx_type: int = -1
    """Corrupt the post-root of the batch's first transaction of this type byte (-1: none by
    type); a batch without one is honest."""
    batches: int = 1
    """How many batches to corrupt (later ones are honest)."""


def corrupt(built: BuiltBatch, *, root_at: int = -1, tx_type: int = -1) -> BuiltBatch:
    """`built` with the committed post-root of transaction `root_at` (or of the first transaction
    of type `tx_type`) replaced by a wrong one, and no `post_state`; unchanged when it has no such
    transaction."""
    if tx_type >= 0:
        root_at = next((i for i, raw in enumerate(built.txs) if raw[:1] == bytes((tx_type,))), -1)
    if not 0 <= root_at < len(built.roots):
        return built
    roots = list(built.roots)
    roots[root_at] = keccak(b"fault-injection" + roots[root_at])
    return dataclasses.replace(built, roots=roots, post_state=None)


@dataclass
class TrustingChain(Chain):
    """A chain that applies the batches of `trusted` without checking their roots."""

    trusted: bytes = b""

    def execute(self, batch: L1Batch) -> None:
        """Apply a trusted sequencer's batch as it is; check any other's."""
        if batch.header.sequencer == self.trusted:
            apply_batch(self.state, list(batch.txs), self.context(batch), self.config)
        else:
            super().execute(batch)


class FaultyPoster(Poster):
    """A poster that corrupts one root of its next `fault.batches` batches."""

    def __init__(self, *args: Any, fault: Fault, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fault = fault
        self.faults_left = fault.batches
        """Batches still to corrupt; one is spent when a corrupted batch is appended."""

    async def build(self, l2_time: int, take: int | None = None) -> BuiltBatch | None:
        """The honest batch, corrupted while faults are left."""
        built = await super().build(l2_time, take)
        if built is None or self.faults_left <= 0:
            return built
        return corrupt(built, root_at=self.fault.root_at, tx_type=self.fault.tx_type)

    def appended(self, built: BuiltBatch, l1_tx: bytes) -> None:
        """Count a corrupted batch on L1 as a fault spent, then as any batch."""
        if self.faults_left > 0 and built.post_state is None:
            self.faults_left -= 1
            log.warning("fault_injected", tx_index=self.fault.root_at, tx_type=self.fault.tx_type)
        super().appended(built, l1_tx)


class FaultyNode(SequencerNode):
    """A sequencer node that lies as `fault` says, and builds on its own lies."""

    def __init__(
        self,
        config: ChainConfig,
        store: Store,
        reader: L1Reader,
        writer: L1Writer,
        *,
        fault: Fault,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            config,
            store,
            reader,
            writer,
            chain=TrustingChain(config, trusted=writer.address),
            poster=partial(FaultyPoster, fault=fault),
            **kwargs,
        )

    @property
    def faults_left(self) -> int:
        """Batches still to corrupt."""
        poster = self.poster
        assert isinstance(poster, FaultyPoster)
        return poster.faults_left


def main(argv: list[str] | None = None) -> None:
    """Run a faulty sequencer: the sequencer's flags, and the fault's."""
    use_pysha3()
    parser = argument_parser("devnet faulty", "Run a sequencer that lies (tests and the demo only).")
    parser.add_argument(
        "--fault-post-root-offset",
        type=int,
        default=-1,
        help="corrupt the post-root of this transaction of the next batch",
    )
    parser.add_argument(
        "--fault-tx-type",
        choices=sorted(TX_TYPE_BYTES),
        help="corrupt the post-root of the next batch's first transaction of this type",
    )
    args = parser.parse_args(argv)
    fault = Fault(
        root_at=args.fault_post_root_offset,
        tx_type=TX_TYPE_BYTES[args.fault_tx_type] if args.fault_tx_type else -1,
    )
    settings = settings_from(
        argparse.Namespace(**{k: v for k, v in vars(args).items() if not k.startswith("fault_")})
    )
    serve(settings, build_node(settings, partial(FaultyNode, fault=fault)))


if __name__ == "__main__":
    main()
