"""A client of any Confluent-compatible schema registry (REST API v1).

The hub talks to the registry named by ``[registry] url``: its own embedded one
(``gridhub.registry``) or a deployment's Confluent Schema Registry. Only what
the hub needs is here: register a schema under a subject, look one up, fetch a
schema by id, the latest version of a subject, and the compatibility test.

Credentials travel in the URL (``http://user:password@registry:8081``) and
become HTTP basic auth; the URL is then kept only with its password replaced,
so neither logs nor errors can show it. Every HTTP failure is translated in
one place (``_raise_for``) into the ``RegistryError`` tree: a refusal names
the subject and the registry's own reason, an unreachable registry names the
URL and says the call will be retried (callers do that).

Schemas fetched by id are cached for the life of the client: a registry never
changes the schema behind an id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

from gridhub.config import redact_dsn

from .exceptions import (
    RegistryRefused,
    RegistryUnavailable,
    SchemaIncompatible,
    SchemaNotFound,
)

CONTENT_TYPE: Final = "application/vnd.schemaregistry.v1+json"
DEFAULT_TIMEOUT_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class SubjectVersion:
    """One version of a subject, as the registry answers it."""

    subject: str
    version: int
    schema_id: int
    schema: str
    """The schema as JSON text, as registered."""


@dataclass(frozen=True, slots=True)
class CompatibilityResult:
    """The registry's answer to "may this schema join the subject?"."""

    is_compatible: bool
    messages: tuple[str, ...] = ()


def value_subject(topic: str) -> str:
    """The subject of a topic's values under TopicNameStrategy (Confluent's default)."""
    return f"{topic}-value"


def schema_text(schema: str | dict[str, Any]) -> str:
    """A schema as the JSON text the registry API carries."""
    return schema if isinstance(schema, str) else json.dumps(schema, ensure_ascii=False)


class SchemaRegistryClient:
    """Blocking client of one registry; safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Args:
        url: ``http(s)://[user:password@]host:port[/path]`` of the registry.
        timeout: seconds for connecting and for each read.
        transport: httpx transport, for tests that answer without a server.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryRefused(
                f"schema registry URL {redact_dsn(url)!r} is not http(s)://host:port",
                status=0,
                error_code=None,
            )
        auth = None
        if parts.username is not None:
            auth = httpx.BasicAuth(unquote(parts.username), unquote(parts.password or ""))
        hostport = parts.netloc.rpartition("@")[2]
        base = urlunsplit((parts.scheme, hostport, parts.path.rstrip("/"), "", ""))
        self.url = redact_dsn(url)
        """The registry's URL with any password replaced: safe to log."""
        self._http = httpx.Client(
            base_url=base,
            auth=auth,
            timeout=timeout,
            headers={"Accept": CONTENT_TYPE, "Content-Type": CONTENT_TYPE},
            transport=transport,
        )
        self._schemas: dict[int, str] = {}

    def __enter__(self) -> SchemaRegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- the API ------------------------------------------------------------------------

    def register(self, subject: str, schema: str | dict[str, Any]) -> int:
        """Register ``schema`` under ``subject`` (a no-op when it is already there).

        Returns:
            The schema's id, to be written into every message's header.

        Raises:
            SchemaIncompatible: the subject's compatibility rule refuses it.
            RegistryRefused: the registry finds the schema invalid, or refuses access.
            RegistryUnavailable: the registry cannot be reached; retry later.
        """
        text = schema_text(schema)
        body = self._call("POST", f"/subjects/{_path(subject)}/versions", {"schema": text}, subject)
        schema_id = int(body["id"])
        self._schemas[schema_id] = text
        return schema_id

    def lookup(self, subject: str, schema: str | dict[str, Any]) -> SubjectVersion:
        """The version of ``subject`` that holds ``schema``.

        Raises:
            SchemaNotFound: the subject does not exist or does not hold the schema.
        """
        body = self._call(
            "POST", f"/subjects/{_path(subject)}", {"schema": schema_text(schema)}, subject
        )
        return self._version(body)

    def version(self, subject: str, version: int | str = "latest") -> SubjectVersion:
        """One version of ``subject`` (``"latest"`` by default).

        Raises:
            SchemaNotFound: no such subject or version.
        """
        body = self._call("GET", f"/subjects/{_path(subject)}/versions/{version}", None, subject)
        return self._version(body)

    def latest(self, subject: str) -> SubjectVersion:
        """The newest version of ``subject``."""
        return self.version(subject, "latest")

    def schema_by_id(self, schema_id: int) -> str:
        """The schema (JSON text) behind ``schema_id``, cached once fetched.

        Raises:
            SchemaNotFound: the registry knows no schema with this id.
        """
        cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        body = self._call("GET", f"/schemas/ids/{int(schema_id)}", None, None)
        text = str(body["schema"])
        self._schemas[schema_id] = text
        return text

    def subjects(self) -> list[str]:
        """Every subject the registry holds."""
        return [str(subject) for subject in self._call("GET", "/subjects", None, None)]

    def test_compatibility(
        self, subject: str, schema: str | dict[str, Any], version: int | str = "latest"
    ) -> CompatibilityResult:
        """Whether ``schema`` may join ``subject`` (against ``version``), with the reasons
        when it may not. Registers nothing."""
        body = self._call(
            "POST",
            f"/compatibility/subjects/{_path(subject)}/versions/{version}?verbose=true",
            {"schema": schema_text(schema)},
            subject,
        )
        return CompatibilityResult(
            bool(body["is_compatible"]), tuple(str(m) for m in body.get("messages") or ())
        )

    def set_compatibility(self, level: str, subject: str | None = None) -> str:
        """Set the compatibility level of ``subject``, or the registry's default."""
        path = "/config" if subject is None else f"/config/{_path(subject)}"
        return str(self._call("PUT", path, {"compatibility": level}, subject)["compatibility"])

    # -- HTTP ---------------------------------------------------------------------------

    @staticmethod
    def _version(body: dict[str, Any]) -> SubjectVersion:
        return SubjectVersion(
            str(body["subject"]), int(body["version"]), int(body["id"]), str(body["schema"])
        )

    def _call(
        self, method: str, path: str, payload: dict[str, Any] | None, subject: str | None
    ) -> Any:
        """Send one request and return the decoded JSON answer, or raise what it means."""
        try:
            response = self._http.request(method, path, json=payload)
        except httpx.TimeoutException as exc:
            raise RegistryUnavailable(
                f"schema registry at {self.url} did not answer {method} {path} in time "
                f"({type(exc).__name__}); it will be retried"
            ) from exc
        except httpx.TransportError as exc:
            raise RegistryUnavailable(
                f"schema registry at {self.url} cannot be reached ({type(exc).__name__}: {exc}); "
                "it will be retried"
            ) from exc
        if response.status_code >= 300:
            self._raise_for(response, method, path, subject)
        return response.json()

    def _raise_for(
        self, response: httpx.Response, method: str, path: str, subject: str | None
    ) -> None:
        """Translate an error answer (Confluent's ``{"error_code", "message"}``)."""
        status = response.status_code
        try:
            body = response.json()
            code = int(body["error_code"])
            message = str(body["message"])
        except (ValueError, KeyError, TypeError):
            code, message = status, response.text[:200] or response.reason_phrase
        if status >= 500 or status == 429:
            raise RegistryUnavailable(
                f"schema registry at {self.url} failed on {method} {path} ({status}: {message}); "
                "it will be retried"
            )
        if status == 409:
            raise SchemaIncompatible(subject or "?", message)
        if status == 404:
            raise SchemaNotFound(
                f"schema registry at {self.url}: {message} (error {code})", error_code=code
            )
        if status in (401, 403):
            raise RegistryRefused(
                f"schema registry at {self.url} refused the credentials in [registry] url "
                f"({status}); check the user and password",
                status=status,
                error_code=code,
            )
        raise RegistryRefused(
            f"schema registry at {self.url} refused {method} {path}: {message} (error {code})",
            status=status,
            error_code=code,
        )


def _path(subject: str) -> str:
    """A subject as one URL path segment."""
    return quote(subject, safe="")
