"""Errors raised by the schema layer.

``SchemaError`` derives from ``ValueError`` so that callers which already treat
bad input as a ``ValueError`` (dead-letter routing, for one) keep working; it is
meant to be re-parented under the hub's error tree once that exists. The
schema registry's errors (``RegistryError`` and below) are part of that tree.
"""

from gridhub.errors import GridhubError, Terminal, Transient


class SchemaError(ValueError):
    """Bytes or data that do not fit any registered Avro schema.

    Raised for a wrong magic byte, an unknown schema id or name, truncated or
    trailing bytes, undecodable Avro and data the encoder cannot write. The
    message always says which of these it was.
    """


class RegistryError(GridhubError):
    """A schema registry did not do what was asked; the subclasses say why::

        RegistryError
        ├── SchemaIncompatible   (Terminal)  the registry refused a new version (409)
        ├── SchemaNotFound       (Terminal)  no such subject, version or schema id (404)
        ├── RegistryRefused      (Terminal)  any other refusal: bad schema, credentials
        └── RegistryUnavailable  (Transient) unreachable, timed out or answered 5xx

    Messages name the registry by its URL with any password replaced.
    """


class SchemaIncompatible(RegistryError, Terminal):
    """A schema would break the subject's compatibility rule (Confluent error 40901)."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(
            f"schema registry refused the new schema for subject {subject}: {reason}. "
            "Change the schema so that it stays compatible (add fields with a default, "
            "never remove or retype one without a default), or register it under a new subject"
        )
        self.subject = subject
        self.reason = reason


class SchemaNotFound(RegistryError, Terminal):
    """The registry knows no such subject, version or schema id."""

    def __init__(self, message: str, *, error_code: int) -> None:
        super().__init__(message)
        self.error_code = error_code


class RegistryRefused(RegistryError, Terminal):
    """The registry answered with an error that retrying will not change."""

    def __init__(self, message: str, *, status: int, error_code: int | None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class RegistryUnavailable(RegistryError, Transient):
    """The registry could not be reached or failed on its side; the call is retried."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
