"""Upkeep: the sequencer's own transactions (protocol section 3), funding steps and deleveraging.

What is due is decided by the keeper's rules (`sequencer.keeper`, over the state machine's); the
upkeep only admits it, like any other transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from contracts.logs import get_logger
from sequencer.keeper import deleverage_options, due_funding, liquidation_candidates
from sequencer.mempool import Mempool
from sequencer.stf.errors import RollupError
from sequencer.stf.types import Tx

log = get_logger("sequencer")


class Upkeep:
    """Admits the funding steps and deleveragings that are due, as of the mempool's view."""

    def __init__(
        self,
        mempool: Mempool,
        submit: Callable[..., tuple[bytes, int]],
        l2_time: Callable[[], int],
        ready: Callable[[], bool],
    ) -> None:
        self.mempool = mempool
        self.submit = submit
        """Admits one transaction (`Intake.submit`)."""
        self.l2_time = l2_time
        """The clock a batch built now would have (`L2Clock.estimate`)."""
        self.ready = ready
        """Whether the node admits transactions yet."""

    def step(self) -> list[Tx]:
        """A Funding step for every market whose interval passed, and auto-deleveraging of a
        bankrupt account's last position when the insurance fund cannot cover it (the
        best-ranked counterparty the state machine accepts). Returns what was admitted.

        Each step names the state it changes (a Funding its period, a Deleverage the account's
        nonce), so it is a new transaction, never one acknowledged before. One the mempool
        dropped after an L1 revert and that applies again has the same bytes: it is revived
        (nobody signed it, and nothing else can replace it)."""
        if not self.ready():
            return []
        now = self.l2_time()
        tree = self.mempool.view.tree
        admitted: list[Tx] = []
        for step in due_funding(tree, now):  # the view counts pending steps: none is due again
            try:
                self.submit(step, revive=True)
                admitted.append(step)
            except RollupError as exc:
                log.info("funding_not_admitted", market=step.market, since=step.since, code=exc.code)
        for candidate in liquidation_candidates(tree, self.mempool.risk, now):
            if not candidate.bankrupt:
                continue
            for option in deleverage_options(tree, self.mempool.risk, candidate.account, now):
                try:
                    self.submit(option, revive=True)
                except RollupError:
                    continue  # the state machine refuses this counterparty: try the next
                admitted.append(option)
                log.warning(
                    "deleveraged",
                    account=option.account,
                    counterparty=option.counterparty,
                    market=option.market,
                )
                break
        return admitted

    async def loop_step(self) -> bool:
        """One turn of the keeper loop."""
        self.step()
        return True
