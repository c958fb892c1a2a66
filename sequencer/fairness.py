"""Fair admission: each client gets its share of the node before its requests cost it anything.

A client is a connection (the peer's host and port). Two rules, checked when a write request
arrives, before its body is validated or any signature in it is recovered:

- **Rate.** Each client may send request bodies at `bytes_per_s` on average, with bursts of
  `burst_bytes`; a request over its allowance is refused with `RateLimited` (429) and the seconds
  until it would fit (`Retry-After`). Cancels always pass the rate.
- **Bad signatures.** A client whose request carried a signature that does not recover to its
  trader is refused every write for a penalty (`penalty_s`, doubled for each further offence up to
  `max_penalty_s`), and its connection is closed. A host whose connections sent `host_offences`
  bad signatures within a penalty is suspect for a penalty: a connection it opens meanwhile is
  refused from its first request, so a flooder that reconnects costs the node no recovery, while
  the host's connections opened before keep their share.

A client's share is forgotten when its connection closes (`forget`). Memory is bounded: at most
`max_clients` clients and as many hosts are tracked, the least recently seen forgotten first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from sequencer.errors import RateLimited

Client = Hashable
"""A client's identity: its connection's (host, port)."""


@dataclass(slots=True)
class _Share:
    """What a client has left: its bucket of bytes, and its penalty."""

    tokens: float
    at: float
    """When `tokens` was last brought up to date."""
    penalized_until: float = 0.0
    offences: int = 0


@dataclass(slots=True)
class _Host:
    """A host's recent bad signatures, and until when its new connections are refused."""

    offences: int
    since: float
    suspect_until: float = 0.0


@dataclass(frozen=True)
class FairnessLimits:
    """The limits of `Fairness` (see the module docstring)."""

    bytes_per_s: int = 4_000_000
    burst_bytes: int = 4_000_000
    penalty_s: float = 1.0
    max_penalty_s: float = 60.0
    host_offences: int = 16
    max_clients: int = 100_000


class Fairness:
    """Each client's share of the node (module docstring); `clock` gives seconds (monotonic)."""

    def __init__(self, limits: FairnessLimits, clock: Callable[[], float] = time.monotonic) -> None:
        if limits.burst_bytes <= 0 or limits.bytes_per_s <= 0 or limits.max_clients <= 0:
            raise ValueError("fairness limits must be positive")
        self.limits = limits
        self.clock = clock
        self._clients: OrderedDict[Client, _Share] = OrderedDict()
        self._hosts: OrderedDict[object, _Host] = OrderedDict()
        self.refused = 0
        """Requests refused so far."""

    def admit(self, client: Client, size: int, *, cancel: bool = False) -> None:
        """Take `size` bytes of `client`'s allowance, or raise `RateLimited` (taking nothing); a
        cancel is refused only for bad signatures, never for the rate."""
        now = self.clock()
        share = self._share(client, now)
        if share.penalized_until > now:
            self.refused += 1
            raise RateLimited("refused for bad signatures", share.penalized_until - now, close=True)
        if cancel:
            return
        limits = self.limits
        share.tokens = min(limits.burst_bytes, share.tokens + (now - share.at) * limits.bytes_per_s)
        share.at = now
        cost = min(size, limits.burst_bytes)  # a body larger than a burst waits for a full bucket
        if share.tokens < cost:
            self.refused += 1
            raise RateLimited("over this client's rate", (cost - share.tokens) / limits.bytes_per_s)
        share.tokens -= cost

    def bad_signature(self, client: Client) -> None:
        """`client` sent a signature that does not recover to its trader: refuse it for a while."""
        now = self.clock()
        share = self._share(client, now)
        limits = self.limits
        share.penalized_until = now + min(limits.max_penalty_s, limits.penalty_s * 2**share.offences)
        share.offences += 1
        host = self._host(client, now)
        if host is not None:
            if now - host.since > limits.penalty_s:
                host.offences, host.since = 0, now
            host.offences += 1
            if host.offences >= limits.host_offences:
                host.suspect_until = now + limits.penalty_s

    def connected(self, client: Client) -> None:
        """`client`'s connection opened: it has its share from now (refused at once if its host
        is suspect now, and not for a suspicion that comes later)."""
        self._share(client, self.clock())

    def forget(self, client: Client) -> None:
        """`client`'s connection closed: its share goes (a later connection from the same port is a
        new client); its host's record stays."""
        self._clients.pop(client, None)

    def penalized(self, client: Client) -> bool:
        """Whether `client` is refused for bad signatures now."""
        share = self._clients.get(client)
        return share is not None and share.penalized_until > self.clock()

    def _share(self, client: Client, now: float) -> _Share:
        clients = self._clients
        share = clients.get(client)
        if share is None:
            share = clients[client] = _Share(float(self.limits.burst_bytes), now)
            if len(clients) > self.limits.max_clients:
                clients.popitem(last=False)
            host = self._hosts.get(_host_of(client))
            if host is not None and host.suspect_until > now:  # opened while its host is suspect
                share.penalized_until = host.suspect_until
        else:
            clients.move_to_end(client)
        return share

    def _host(self, client: Client, now: float) -> _Host | None:
        key = _host_of(client)
        if key is None:
            return None
        hosts = self._hosts
        host = hosts.get(key)
        if host is None:
            host = hosts[key] = _Host(0, now)
            if len(hosts) > self.limits.max_clients:
                hosts.popitem(last=False)
        else:
            hosts.move_to_end(key)
        return host


def _host_of(client: Client) -> object:
    """The host of a (host, port) client (None for another kind of identity)."""
    if isinstance(client, tuple) and len(client) == 2:
        return client[0]
    return None


@dataclass(slots=True)
class _Budget:
    tokens: float
    at: float


class AccountRates:
    """Each signing account's share: orders it placed (signatures verified, so no one can spend
    another's) at `orders_per_s` on average with bursts of `burst`. An account over its share has
    its next orders refused with `RateLimited` before their signatures are recovered, until its
    share has come back; an account whose orders come from many connections is held to one share.
    """

    def __init__(
        self,
        orders_per_s: int,
        burst: int,
        *,
        max_accounts: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if orders_per_s <= 0 or burst <= 0 or max_accounts <= 0:
            raise ValueError("account rates must be positive")
        self.orders_per_s = orders_per_s
        self.burst = burst
        self.max_accounts = max_accounts
        self.clock = clock
        self._accounts: OrderedDict[bytes, _Budget] = OrderedDict()

    def spend(self, counts: dict[bytes, int]) -> None:
        """Accounts placed these numbers of orders (an account may go into debt)."""
        now = self.clock()
        accounts = self._accounts
        for account, n in counts.items():
            budget = accounts.get(account)
            if budget is None:
                budget = accounts[account] = _Budget(float(self.burst), now)
                if len(accounts) > self.max_accounts:
                    accounts.popitem(last=False)
            else:
                accounts.move_to_end(account)
                budget.tokens = min(self.burst, budget.tokens + (now - budget.at) * self.orders_per_s)
                budget.at = now
            budget.tokens -= n

    def check(self, accounts: Iterable[bytes]) -> None:
        """Raise `RateLimited` if one of `accounts` is over its share now."""
        known = self._accounts
        now = -1.0
        for account in accounts:
            budget = known.get(account)
            if budget is None or budget.tokens >= 0:
                continue
            if now < 0:
                now = self.clock()
            owed = -(budget.tokens + (now - budget.at) * self.orders_per_s)
            if owed > 0:
                raise RateLimited(
                    f"account 0x{account.hex()} is over its share of orders", owed / self.orders_per_s
                )
