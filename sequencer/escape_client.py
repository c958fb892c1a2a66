"""The escape hatch from a trader's side (docs/protocol.md section 12), from L1 data alone.

When every sequencer is gone (or censors), anyone freezes the Rollup once no batch has been
appended for its escape delay while a queue entry is overdue; then each account registers its
exit during the Bridge's exit window, proving its leaves against the frozen root, and is paid
after it. Nothing here asks a sequencer: the state is re-derived from L1 events and batch
calldata with the state machine, as a watcher derives it (`sequencer.stf.chain`).

```python
escape = EscapeClient.connect("http://127.0.0.1:8545", "var/deployment.json", private_key)
escape.freeze()                  # anyone, once the delay has passed
escape.claim_withdrawals()       # this account's withdrawals not claimed yet, as usual
escape.register()                # this account's exit, during the exit window
escape.pay()                     # after the window: claim x min(1, pool / total claims)
escape.refund_deposits()         # this key's deposits no batch consumed
```
Refusals raise `EscapeRefused` with the contract's reason ("rollup: escape delay not passed",
"bridge: already exited", "bridge: exit window open", ...).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from contracts.bindings import (
    DepositedEvent,
    ExitInfo,
    FrozenEvent,
    Sender,
    TransactionReverted,
    TxResult,
)
from contracts.l1 import Web3L1, load_deployment
from sequencer.stf.chain import Chain
from sequencer.stf.eip712 import address_of
from sequencer.stf.errors import RollupError
from sequencer.stf.escape import ExitProof, exit_proof
from sequencer.stf.keys import withdrawal_key
from sequencer.stf.state import get_account, get_withdrawal, state_root

WINDOW_OPEN = "bridge: exit window open"
"""The Bridge's refusal of a payout before the exit window is over."""


class EscapeRefused(RollupError):
    """The L1 refused a step of the escape (its revert reason), or L1 data does not allow it."""

    code = "escape_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Registered:
    """An exit registered on the Bridge."""

    account: bytes
    recipient: bytes
    equity: int
    """The equity the Bridge computed (it equals the state machine's, `ExitProof.equity`)."""
    claim: int
    """What it claims: the equity if positive, else 0."""
    l1_tx: bytes
    gas_used: int


@dataclass(frozen=True)
class Paid:
    """An exit paid by the Bridge."""

    account: bytes
    recipient: bytes
    claim: int
    amount: int
    """The claim pro rata of the pool (all of it when the pool covers every claim)."""
    l1_tx: bytes
    gas_used: int


@dataclass(frozen=True)
class WithdrawalPaid:
    """A withdrawal of the frozen state, claimed on the Bridge."""

    nonce: int
    recipient: bytes
    amount: int
    l1_tx: bytes


@dataclass(frozen=True)
class Refunded:
    """A deposit no batch consumed, paid back to its depositor."""

    index: int
    depositor: bytes
    amount: int
    l1_tx: bytes


class EscapeClient:
    """One trader's exit (and anyone's freeze, payouts and refunds), from L1 data alone."""

    def __init__(self, l1: Web3L1, private_key: bytes, *, l1_sender: Sender | None = None) -> None:
        """`l1` is the L1 adapter; `private_key` the trader's, which also signs the registration
        (the Bridge takes an exit from the account itself). `l1_sender` pays for the other
        transactions (freeze, payouts, refunds; default: the trader's key)."""
        self.l1 = l1
        self.key = private_key
        self.address = address_of(private_key)
        self.trader = Sender.from_key(private_key)
        self.l1_sender = l1_sender or self.trader

    @classmethod
    def connect(
        cls, l1_url: str, deployment_path: str, private_key: bytes, *, l1_key: bytes | None = None
    ) -> EscapeClient:
        """Over an L1 JSON-RPC endpoint (`l1_key` pays for what the trader need not send)."""
        l1 = Web3L1(l1_url, load_deployment(deployment_path))
        return cls(l1, private_key, l1_sender=Sender.from_key(l1_key) if l1_key else None)

    def _send(self, label: str, send: Any) -> TxResult:
        try:
            result: TxResult = send()
        except TransactionReverted as exc:
            raise EscapeRefused(exc.reason or f"{label} reverted") from exc
        return result

    # ---- the freeze ----

    def freeze(self) -> FrozenEvent:
        """Freeze the Rollup (anyone may, once no batch was appended for the escape delay while a
        queue entry is overdue); returns the `Frozen` event."""
        result = self._send("freeze", lambda: self.l1.rollup.freeze(self.l1_sender))
        (event,) = self.l1.rollup.frozen_from_receipt(result.receipt)
        return event

    def frozen(self) -> FrozenEvent | None:
        """The Rollup's freeze, or None while it is not frozen."""
        events = self.l1.rollup.frozen_events(self.l1.deployment.deploy_block)
        return events[0] if events else None

    # ---- the exit ----

    def derive(self) -> Chain:
        """The chain as L1 data alone defines it (events and batch calldata, re-executed)."""
        chain = Chain(self.l1.chain_config())
        for event in self.l1.events(self.l1.deployment.deploy_block, self.l1.head_block()):
            chain.apply_event(event)
        return chain

    def proof(self, chain: Chain | None = None) -> ExitProof:
        """This account's exit proof from the frozen state, derived from L1 (`chain`, or derived
        now). Refused unless the Rollup is frozen and the derived state is the frozen root."""
        chain = chain or self.derive()
        frozen = chain.frozen
        if frozen is None:
            raise EscapeRefused("the Rollup is not frozen")
        if chain.fraud is not None or chain.unreadable is not None or chain.valid_count != frozen.batch_count:
            raise EscapeRefused("the batches on L1 do not derive to the frozen state")
        if state_root(chain.state) != frozen.post_root:
            raise EscapeRefused("the derived state root differs from the frozen root")
        return exit_proof(chain.state, self.address)

    def register(self, recipient: bytes | None = None, proof: ExitProof | None = None) -> Registered:
        """Register this account's exit (during the exit window); the payout goes to `recipient`
        (default: the trader's own address)."""
        proof = proof or self.proof()
        to = recipient or self.address
        bridge = self.l1.bridge
        result = self._send(
            "register_exit",
            lambda: bridge.register_exit(self.trader, to, proof.account_witness, proof.markets_witness),
        )
        (event,) = bridge.exit_registered_from_receipt(result.receipt)
        return Registered(
            event.account, event.recipient, event.equity, event.claim, result.tx_hash, result.gas_used
        )

    def exit_info(self, account: bytes | None = None) -> ExitInfo:
        """An account's exit as the Bridge records it (default: this trader's)."""
        return self.l1.bridge.exit_of(account or self.address)

    def window_ends(self) -> int:
        """The L1 time from which exits are paid (and no more registered)."""
        frozen = self.frozen()
        if frozen is None:
            raise EscapeRefused("the Rollup is not frozen")
        return frozen.timestamp + self.l1.bridge.exit_window_seconds()

    def pay(self, account: bytes | None = None, *, wait_s: float = 0.0) -> Paid:
        """Pay a registered exit (default: this trader's) after the exit window; with `wait_s`,
        while the window is still open, try again until it closes (at most `wait_s` seconds)."""
        bridge = self.l1.bridge
        deadline = time.monotonic() + wait_s
        while True:
            try:
                result = self._send(
                    "pay_exit", lambda: bridge.pay_exit(self.l1_sender, account or self.address)
                )
                break
            except EscapeRefused as exc:
                if exc.reason != WINDOW_OPEN or time.monotonic() >= deadline:
                    raise
                time.sleep(0.25)
        (event,) = bridge.exit_paid_from_receipt(result.receipt)
        return Paid(
            event.account, event.recipient, event.claim, event.amount, result.tx_hash, result.gas_used
        )

    def claim_withdrawals(self, chain: Chain | None = None) -> list[WithdrawalPaid]:
        """Claim this account's withdrawals written in the frozen state and not paid yet (as
        usual: the tip is final). Claim them before the exit window closes: after it, the Bridge
        pays one only if what the exits leave covers it."""
        chain = chain or self.derive()
        self.proof(chain)  # the derived state is the frozen one
        header = chain.batches[-1].header
        bridge = self.l1.bridge
        out = []
        for nonce in range(get_account(chain.state, self.address).nonce):
            found = get_withdrawal(chain.state, self.address, nonce)
            key = withdrawal_key(self.address, nonce)
            if found is None or bridge.is_claimed(key):
                continue
            recipient, amount = found
            witness = chain.state.tree.witness(key)
            result = self._send(
                "claim_withdrawal",
                lambda n=nonce, r=recipient, a=amount, w=witness: bridge.claim_withdrawal(
                    self.l1_sender, header, self.address, n, r, a, w
                ),
            )
            out.append(WithdrawalPaid(nonce, recipient, amount, result.tx_hash))
        return out

    # ---- refunds ----

    def unconsumed_deposits(self, depositor: bytes | None = None) -> list[DepositedEvent]:
        """Deposits no batch consumed (at or after the frozen `queue_end`) not refunded yet, paid by
        `depositor` (default: this trader's address; `b""`: anyone's)."""
        frozen = self.frozen()
        if frozen is None:
            raise EscapeRefused("the Rollup is not frozen")
        who = self.address if depositor is None else depositor
        bridge = self.l1.bridge
        return [
            d
            for d in bridge.deposited_events(self.l1.deployment.deploy_block)
            if d.index >= frozen.queue_end
            and (not who or d.sender == who)
            and not bridge.is_refunded(d.index)
        ]

    def refund_deposits(self, depositor: bytes | None = None) -> list[Refunded]:
        """Refund every deposit of `unconsumed_deposits(depositor)` to whoever paid it."""
        bridge = self.l1.bridge
        out = []
        for d in self.unconsumed_deposits(depositor):
            result = self._send(
                "claim_refund", lambda d=d: bridge.claim_refund(self.l1_sender, d.index, d.to, d.amount)
            )
            (event,) = bridge.deposit_refunded_from_receipt(result.receipt)
            out.append(Refunded(event.index, event.depositor, event.amount, result.tx_hash))
        return out
