"""Subjects, versions, ids and compatibility levels of the embedded schema registry.

Everything is one JSON file, ``<data_dir>/registry/registry.json``, rewritten
whole (beside the old one, then renamed into place) on every change, so a
crash leaves the old state or the new one and a restart finds every id again.
Registrations are rare (the hub's own subjects at start, a publisher's new
version now and then), so rewriting the whole file costs nothing.

Ids: a schema's id is the one the hub's own catalog gives it
(``gridhub.schemas.registry.schema_id``: the CRC-32 of its Parsing Canonical
Form, masked to 31 bits). So the hub's schemas have the same id here as in
every message its connectors write, and the same schema gets the same id under
every subject and after any restart. Two texts with the same canonical form
(they differ only in ``doc``, ``default`` or logical types) are one schema here,
as in the catalog; the first text registered is kept. A real Confluent registry
numbers schemas itself instead; the hub's client handles both.

Errors are :class:`ApiError` with Confluent's status and error codes, which the
HTTP server sends as ``{"error_code": ..., "message": ...}``.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Final

import avro.schema
from fastavro import parse_schema
from fastavro.schema import SchemaParseException, to_parsing_canonical_form

from gridhub.runtime.files import read_json, write_json_atomic
from gridhub.schemas.compatibility import (
    DEFAULT_LEVEL,
    LEVELS,
    compatibility_problems,
    parse_for_checking,
)
from gridhub.schemas.exceptions import SchemaError
from gridhub.schemas.registry import schema_id

STATE_FILE: Final = "registry.json"
GLOBAL: Final = ""
"""Key of the registry-wide compatibility level in the config map."""


class ApiError(Exception):
    """A request the registry refuses, with Confluent's HTTP status and error code."""

    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def _subject_not_found(subject: str) -> ApiError:
    return ApiError(404, 40401, f"Subject '{subject}' not found.")


class SubjectStore:
    """The registry's state, safe to use from the server's threads."""

    def __init__(self, folder: Path) -> None:
        """Load the state kept in ``folder`` (created on first use)."""
        self.path = folder / STATE_FILE
        self._lock = threading.Lock()
        state = read_json(self.path) or {}
        self._schemas: dict[int, str] = {
            int(sid): str(text) for sid, text in state.get("schemas", {}).items()
        }
        self._subjects: dict[str, list[int]] = {
            str(subject): [int(sid) for sid in ids]
            for subject, ids in state.get("subjects", {}).items()
        }
        self._config: dict[str, str] = dict(state.get("config", {}))

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "schemas": {str(sid): text for sid, text in sorted(self._schemas.items())},
            "subjects": self._subjects,
            "config": self._config,
        }
        write_json_atomic(self.path, state, indent=1)

    # -- reading ------------------------------------------------------------------------

    def subjects(self) -> list[str]:
        """Every subject, sorted."""
        with self._lock:
            return sorted(self._subjects)

    def versions(self, subject: str) -> list[int]:
        """The version numbers of ``subject``, oldest first."""
        with self._lock:
            return list(range(1, len(self._ids(subject)) + 1))

    def version(self, subject: str, ref: str) -> dict[str, Any]:
        """Version ``ref`` (a number, ``latest`` or ``-1``) of ``subject``."""
        with self._lock:
            ids = self._ids(subject)
            number = self._number(ids, ref)
            return self._answer(subject, number, ids[number - 1])

    def schema(self, sid: int) -> str:
        """The schema text behind id ``sid``."""
        with self._lock:
            text = self._schemas.get(sid)
        if text is None:
            raise ApiError(404, 40403, f"Schema {sid} not found.")
        return text

    def uses(self, sid: int) -> list[dict[str, Any]]:
        """Every (subject, version) that holds schema ``sid``."""
        self.schema(sid)
        with self._lock:
            return [
                {"subject": subject, "version": index}
                for subject, ids in sorted(self._subjects.items())
                for index, held in enumerate(ids, start=1)
                if held == sid
            ]

    def lookup(self, subject: str, text: str) -> dict[str, Any]:
        """The version of ``subject`` that holds the schema ``text``."""
        sid, _ = _identify(text)
        with self._lock:
            ids = self._ids(subject)
            if sid not in ids:
                raise ApiError(404, 40403, "Schema not found.")
            return self._answer(subject, ids.index(sid) + 1, sid)

    def level(self, subject: str | None, *, default_to_global: bool = True) -> str:
        """The compatibility level of ``subject`` (or the registry's, for None)."""
        with self._lock:
            if subject is not None and subject in self._config:
                return self._config[subject]
            if subject is not None and not default_to_global:
                raise ApiError(
                    404,
                    40408,
                    f"Subject '{subject}' does not have subject-level compatibility configured",
                )
            return self._config.get(GLOBAL, DEFAULT_LEVEL)

    # -- changing -----------------------------------------------------------------------

    def register(self, subject: str, text: str) -> int:
        """Add ``text`` as the next version of ``subject`` if the level allows it.

        Returns the schema's id; registering a schema the subject already holds
        changes nothing and returns its id.
        """
        sid, canonical = _identify(text)
        parsed = _checkable(text)
        level = self.level(subject)
        with self._lock:
            ids = self._subjects.get(subject, [])
            if sid in ids:
                return sid
            self._check_id_free(sid, canonical)
            earlier = [parse_for_checking(self._schemas[held]) for held in ids]
            problems = compatibility_problems(parsed, earlier, level)
            if problems:
                raise ApiError(
                    409,
                    40901,
                    f"Schema being registered is incompatible with an earlier schema for "
                    f'subject "{subject}" (compatibility {level}): ' + "; ".join(problems),
                )
            self._schemas.setdefault(sid, text)
            self._subjects[subject] = [*ids, sid]
            self._save()
        return sid

    def test(self, subject: str, ref: str | None, text: str) -> list[str]:
        """Why ``text`` may not join ``subject``: against version ``ref``, or against
        what the level names when ``ref`` is None. Empty when it may."""
        _identify(text)
        parsed = _checkable(text)
        level = self.level(subject)
        with self._lock:
            ids = self._subjects.get(subject, [])
            if ref is not None and ids:
                ids = [ids[self._number(ids, ref) - 1]]
            elif ref is not None and ref not in ("latest", "-1"):
                raise _subject_not_found(subject)
            earlier = [parse_for_checking(self._schemas[held]) for held in ids]
        if ref is not None and level != "NONE":
            level = level.removesuffix("_TRANSITIVE")  # one version is named: check it alone
        return compatibility_problems(parsed, earlier, level)

    def set_level(self, subject: str | None, level: str) -> str:
        """Set the compatibility level of ``subject`` (None: the registry's default)."""
        level = level.upper()
        if level not in LEVELS:
            raise ApiError(
                422, 42203, f"Invalid compatibility level {level!r}; use one of {', '.join(LEVELS)}"
            )
        with self._lock:
            self._config[GLOBAL if subject is None else subject] = level
            self._save()
        return level

    # -- helpers (lock held) ------------------------------------------------------------

    def _ids(self, subject: str) -> list[int]:
        ids = self._subjects.get(subject)
        if not ids:
            raise _subject_not_found(subject)
        return ids

    @staticmethod
    def _number(ids: list[int], ref: str) -> int:
        if ref in ("latest", "-1"):
            return len(ids)
        if not ref.isdigit() or int(ref) < 1:
            raise ApiError(422, 42202, f"The specified version '{ref}' is not a valid version id.")
        if int(ref) > len(ids):
            raise ApiError(404, 40402, f"Version {ref} not found.")
        return int(ref)

    def _answer(self, subject: str, number: int, sid: int) -> dict[str, Any]:
        return {"subject": subject, "version": number, "id": sid, "schema": self._schemas[sid]}

    def _check_id_free(self, sid: int, canonical: str) -> None:
        held = self._schemas.get(sid)
        if held is not None and _identify(held)[1] != canonical:
            raise ApiError(
                422,
                42201,
                f"Schema id {sid} (the CRC of its canonical form) is taken by a different "
                "schema; rename the record or a field to register this one",
            )


def _identify(text: str) -> tuple[int, str]:
    """The id and Parsing Canonical Form of a schema text, or 422 when it is no schema."""
    try:
        tree = json.loads(text)
        canonical = to_parsing_canonical_form(parse_schema(tree))
    except (ValueError, TypeError, KeyError, SchemaParseException, SchemaError) as exc:
        raise ApiError(422, 42201, f"Invalid schema: {exc}") from exc
    return schema_id(canonical), canonical


def _checkable(text: str) -> avro.schema.Schema:
    """The schema parsed for the compatibility checker, or 422 when Avro refuses it."""
    try:
        return parse_for_checking(text)
    except SchemaError as exc:
        raise ApiError(422, 42201, f"Invalid schema: {exc}") from exc
