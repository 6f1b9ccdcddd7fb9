"""The one error tree of gridhub.

Messages are read by clerks and operators on duty, so each says what is wrong
and what to do about it, never a secret::

    GridhubError
    ├── ConfigError                  (Terminal)  a key is missing or wrong
    ├── EmbeddedRuntimeError         (Terminal)  the embedded broker or store would not start
    ├── SourceUnavailable            (Transient) a source system cannot be reached; retry_after
    ├── RecordRejected               (Terminal)  one record is unusable; goes to dead letters
    ├── SinkBackpressure             (Transient) ClickHouse is slow or down; retry_after
    ├── BrokerUnavailable            (Transient) the broker did not take or serve the hub's
                                                 own messages (checkpoints, replay requests)
    ├── ReplayNotApplied             (Terminal)  no process applied a replay request in time
    └── PullStopped                              not a failure: a source was asked to stop
                                                 between two batches (ownership moved, a replay)

``Transient`` means "retry later, nothing is wrong with the data";
``Terminal`` means retrying the same thing cannot help.
"""

from __future__ import annotations

from typing import Literal


class GridhubError(Exception):
    """Root of every error gridhub raises on purpose."""


class Transient:
    """Mixin: the same action may succeed later."""


class Terminal:
    """Mixin: the same action will fail again; fix the input or configuration."""


class ConfigError(GridhubError, Terminal):
    """The configuration file or an environment override is wrong or missing a key."""


class EmbeddedRuntimeError(GridhubError, Terminal):
    """The embedded broker or store could not be started or reached."""


ErrorKind = Literal[
    "timeout", "connection", "rate_limited", "refused", "server_error", "bad_answer",
    "database", "broker", "files", "other",
]  # fmt: skip
"""What went wrong with a source, for ``gridhub_source_errors_total{kind=...}``."""


class SourceUnavailable(GridhubError, Transient):
    """A source system could not be reached or answered with a retryable error."""

    def __init__(
        self,
        source: str,
        message: str,
        *,
        kind: ErrorKind = "other",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"source {source}: {message}")
        self.source = source
        self.kind: ErrorKind = kind
        self.retry_after = retry_after


class RecordRejected(GridhubError, Terminal):
    """One record cannot be used; it goes to dead letters with the reason."""

    def __init__(self, reason: str, *, source: str, entity: str, raw: bytes) -> None:
        super().__init__(f"{source}/{entity}: {reason}")
        self.reason = reason
        self.source = source
        self.entity = entity
        self.raw = raw


class SinkBackpressure(GridhubError, Transient):
    """ClickHouse did not accept a batch; offsets stay uncommitted until it does."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BrokerUnavailable(GridhubError, Transient):
    """The broker did not take a checkpoint or a request, or a topic could not be read to
    its high watermark."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ReplayNotApplied(GridhubError, Terminal):
    """``gridhub replay`` got no answer from the process that owns the source."""


class PullStopped(GridhubError):
    """Control flow, never shown: the source loop stops after the batch just sent."""
