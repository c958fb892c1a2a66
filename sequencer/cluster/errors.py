"""The sequencer set's errors.

`Fenced` is the refusal that keeps the log from forking; `ClusterUnavailable` is any failure of
NATS that may pass (retried with backoff); the critical ones say the log is not what it must be.
"""

from __future__ import annotations

from sequencer.errors import CriticalError, TransientError
from sequencer.stf.errors import RollupError


class ClusterError(RollupError):
    """Root of the sequencer set's errors."""

    code = "cluster"


class Fenced(ClusterError):
    """An append was refused: the log's last position is not the one the writer expected (another
    leader appended since). Nothing was written."""

    code = "fenced"

    def __init__(self, expected: int, actual: int | None) -> None:
        known = f", it is {actual}" if actual is not None else ""
        super().__init__(f"append refused: expected the log to end at {expected}{known}")
        self.expected = expected
        """The last position the writer saw."""
        self.actual = actual
        """The log's last position as the server reported it (None if it did not say)."""


class EntryTooLarge(ClusterError, ValueError):
    """An entry is larger than the NATS server accepts in one message. Nothing was written."""

    code = "entry_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"log entry of {size} bytes is over the server's limit of {limit} bytes")
        self.size = size
        self.limit = limit


class ClusterUnavailable(ClusterError, TransientError):
    """NATS did not answer, or answered that it cannot now (no quorum, no leader, a timeout). An
    append that failed so may still have been written: retry it as it was (its message id makes
    the retry idempotent) or read the log's end."""

    code = "cluster_unavailable"


class LogGap(ClusterError, CriticalError):
    """A reader could not get the next position: the entries after `position` are gone."""

    code = "log_gap"

    def __init__(self, position: int, got: int) -> None:
        super().__init__(f"the log skips from position {position} to {got}")
        self.position = position
        """The last position read."""
        self.got = got
        """The next position the log holds."""


class BadEntry(ClusterError, CriticalError):
    """Bytes in the log that are not an entry (docs/protocol.md, "The sequencer set's log")."""

    code = "bad_entry"


class ConfigMismatch(ClusterError, CriticalError):
    """The stream or bucket exists with a configuration other than the one asked for."""

    code = "cluster_config_mismatch"
