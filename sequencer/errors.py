"""The service's errors.

Refusals decided by the service rather than the state machine, each with a code that the API
maps to an HTTP status (`sequencer.api.errors`); and the two kinds of failure of a driver loop
(`contracts.follow`, shared with the watcher): `TransientError` (retried with backoff) and
`CriticalError` (the loop stops and says why in /health and a `critical` log line).
"""

from __future__ import annotations

from contracts.follow import CriticalError, TransientError
from sequencer.stf.errors import RollupError

__all__ = [
    "CriticalError",
    "Dropped",
    "L1Unavailable",
    "Malformed",
    "NoMatch",
    "NotFound",
    "NotLeader",
    "NotReady",
    "Overloaded",
    "RateLimited",
    "ServiceError",
    "TransientError",
]


class ServiceError(RollupError):
    """A refusal decided by the service (not by the state machine)."""

    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    """The resource does not exist."""

    code = "not_found"


class Overloaded(ServiceError):
    """The mempool is full; try again later."""

    code = "overloaded"


class RateLimited(ServiceError):
    """The client is over its share of the node (`sequencer.fairness`); it may try again after
    `retry_after_s` seconds, on a new connection if `close`."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: float, *, close: bool = False) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.close = close


class NotReady(ServiceError):
    """The node has not caught up with the L1 yet."""

    code = "not_ready"


class L1Unavailable(ServiceError):
    """The L1 has not answered, or no batch could be posted, for longer than the node's limits:
    the node acknowledges nothing more until it can post again."""

    code = "l1_unavailable"


class NotLeader(ServiceError):
    """This member of the sequencer set does not hold the lease: it acknowledges no writes (a
    client sends them to the leader, named in `leader` when known)."""

    code = "not_leader"

    def __init__(self, message: str, leader: str | None = None) -> None:
        super().__init__(message)
        self.leader = leader


class LogBehind(ServiceError):
    """A read asked for a position of the set's log that this member has not applied within the
    wait allowed (another member may have)."""

    code = "log_behind"


class Dropped(ServiceError):
    """The transaction was acknowledged once, then dropped (it no longer applied after an L1
    revert); it is not acknowledged again."""

    code = "dropped"


class NoMatch(ServiceError):
    """No resting order can fill a leg of a bundle whole (a bundle never rests)."""

    code = "no_match"


class Malformed(ServiceError):
    """The request body does not describe a transaction."""

    code = "malformed"
