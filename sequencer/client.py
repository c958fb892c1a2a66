"""A small trader SDK: sign transactions (EIP-712, as a wallet would) and submit them over HTTP.

```python
trader = TraderClient("http://127.0.0.1:8600", private_key, ChainConfig(chain_id, rollup))
ack = trader.transfer(to, 1_000)          # signs with the next nonce, returns the acknowledgement
trader.wait_batched(ack.hash)             # until an L1 batch holds it
```
Refusals raise `RequestRefused` with the API's machine-readable code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from sequencer.receipts import verify_receipt
from sequencer.stf.codec import encode_tx
from sequencer.stf.eip712 import address_of, sign_transfer, sign_withdraw
from sequencer.stf.errors import RollupError
from sequencer.stf.types import ChainConfig, Tx


class RequestRefused(RollupError):
    """The sequencer refused a request; `code` is its machine-readable error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Ack:
    """A sequencer's acknowledgement: the transaction is in its durable log."""

    hash: str
    seq: int
    sequencer: str
    receipt: str | None
    """The sequencer's signature over (hash, seq, sequencer); checked by `submit`."""


class TraderClient:
    """Signs and submits one trader's transactions to one sequencer."""

    def __init__(self, url: str, private_key: bytes, config: ChainConfig, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.key = private_key
        self.address = address_of(private_key)
        self.config = config
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                err = response.json()["error"]
                raise RequestRefused(response.status_code, err["code"], err["message"])
            except (ValueError, KeyError, TypeError):
                raise RequestRefused(response.status_code, "http", response.text) from None
        return response.json()

    def account(self, address: bytes | None = None) -> dict[str, Any]:
        """An account's confirmed and pending collateral and nonce."""
        addr = address or self.address
        data: dict[str, Any] = self._check(self.http.get(f"{self.url}/v1/accounts/0x{addr.hex()}"))
        return data

    def next_nonce(self) -> int:
        """The nonce the sequencer expects next (counting its mempool)."""
        return int(self.account()["pending_nonce"])

    def submit(self, tx: Tx) -> Ack:
        """Submit an already signed transaction (encoded, to /v1/transactions)."""
        body = {"raw": "0x" + encode_tx(tx).hex()}
        data = self._check(self.http.post(f"{self.url}/v1/transactions", json=body))
        ack = Ack(data["hash"], data["seq"], data["sequencer"], data.get("receipt"))
        if ack.receipt is not None and not verify_receipt(
            self.config,
            bytes.fromhex(ack.hash[2:]),
            ack.seq,
            bytes.fromhex(ack.sequencer[2:]),
            bytes.fromhex(ack.receipt[2:]),
        ):
            raise RollupError(f"sequencer {ack.sequencer} sent a receipt that does not verify")
        return ack

    def transfer(self, to: bytes, amount: int, nonce: int | None = None) -> Ack:
        """Sign and submit a transfer (nonce from the sequencer unless given)."""
        n = self.next_nonce() if nonce is None else nonce
        return self.submit(sign_transfer(self.key, to, amount, n, self.config))

    def withdraw(self, l1_recipient: bytes, amount: int, nonce: int | None = None) -> tuple[Ack, int]:
        """Sign and submit a withdrawal to L1; returns the acknowledgement and the nonce used."""
        n = self.next_nonce() if nonce is None else nonce
        return self.submit(sign_withdraw(self.key, l1_recipient, amount, n, self.config)), n

    def tx_status(self, tx_hash: str) -> dict[str, Any]:
        """Where a transaction is (pending, batched with its batch index, dropped)."""
        data: dict[str, Any] = self._check(self.http.get(f"{self.url}/v1/transactions/{tx_hash}"))
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
