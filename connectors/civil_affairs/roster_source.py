"""Watches the roster folder (``[sources.civil] roster_dir``) and publishes each complete roster.

For every roster file with its marker (see ``rosters.py``) whose content this
connector has not published yet, it publishes the rows (``roster_elderly`` or
``roster_disability``), the rows it could not read straight to the dead
letters, and then one ``RosterEdition`` (``roster_editions``): the merge
gives a roster's allowance to the people listed in the newest edition of its
kind, so a corrected roster dropped under the same name replaces its month,
including the people it no longer lists.

The position is the files done, each by its SHA-256: a marker touched again
over the same content publishes nothing, a re-drop with new content is a new
edition, and reading a file twice changes nothing downstream (same rows, same
edition). Every batch of a file carries the position *before* the file, and
its edition the position with it, so a crash part-way reads the whole file
again. All roster entities share this one position (``checkpoint_of``).
"""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gridhub.connectors.base.checkpoint import Checkpoint, Position
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.connectors.base.records import encode_item
from gridhub.connectors.base.source import Source
from gridhub.connectors.civil_affairs.rosters import (
    RosterContent,
    RosterFile,
    RosterUnreadable,
    complete_rosters,
    read_roster,
)
from gridhub.schemas import encode_dict
from gridhub.streams.route import dead_letter

from gridhub.config import CivilSourceConfig
from gridhub.errors import SourceUnavailable

EDITIONS = "roster_editions"
CHECKPOINT = "rosters"
MAX_DEAD_LETTER_BYTES = 4 * 1024 * 1024
"""An unreadable file goes to the dead letters whole up to this size (the file itself
stays in the folder)."""


class RosterSource(Source):
    """The 发放花名册 folder connector."""

    name = "civil"
    component = "civil.rosters"
    entities = ("roster_elderly", "roster_disability", EDITIONS)

    def __init__(
        self,
        config: CivilSourceConfig,
        publisher: EnvelopePublisher,
        checkpoints: dict[str, Checkpoint],
        *,
        ack_on_publish: bool,
        entities: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(
            publisher, checkpoints, ack_on_publish=ack_on_publish, poll_seconds=config.poll_seconds
        )
        assert config.roster_dir is not None
        self.directory: Path = config.roster_dir
        self.batch_rows = config.batch_rows
        self.position: Position = self._committed()

    @classmethod
    def configured(cls, config: CivilSourceConfig) -> bool:
        """Only when ``[sources.civil] roster_dir`` is set."""
        return config.roster_dir is not None

    @classmethod
    def checkpoint_of(cls, entity: str) -> str:
        """One position (the files done) for rows, dead letters and editions alike."""
        return CHECKPOINT

    @classmethod
    def position_since(cls, since: datetime) -> Position:
        """Files completed at or after ``since`` are read again; older ones stay done."""
        return {"files": {}, "done_before": since.astimezone(UTC).isoformat()}

    def _committed(self) -> Position:
        committed = self.checkpoints[EDITIONS].rewind()
        return copy.deepcopy(committed) if committed else {"files": {}}

    def rewind(self) -> None:
        """Resume from the committed files: a file part-way published is read again."""
        self.position = self._committed()

    def poll(self) -> int:
        """Publish every complete roster not published yet, oldest month first."""
        try:
            rosters = complete_rosters(self.directory)
        except OSError as exc:
            raise SourceUnavailable(
                self.label,
                f"the roster folder {self.directory} cannot be read: {exc.strerror}",
                kind="files",
            ) from exc
        published = 0
        for roster in rosters:
            if self._unchanged(roster):
                continue
            try:
                data = roster.path.read_bytes()
            except OSError as exc:
                raise SourceUnavailable(
                    self.label, f"{roster.name} cannot be read: {exc.strerror}", kind="files"
                ) from exc
            if roster.path.stat().st_mtime_ns != roster.mtime_ns:
                continue  # written again while read: a re-drop has begun; its marker will follow
            published += self._publish(roster, data)
        self.health.positions = {"files": len(self.position["files"])}
        return published

    def _unchanged(self, roster: RosterFile) -> bool:
        """Done already: the same marker and size (no need to read it), or a file completed
        before a replay's point in time."""
        done = self.position["files"].get(roster.name)
        if done is not None:
            return bool(done["marker_ns"] == roster.marker_mtime_ns and done["size"] == roster.size)
        before = self.position.get("done_before")
        return before is not None and roster.completed_at < datetime.fromisoformat(before)

    def _publish(self, roster: RosterFile, data: bytes) -> int:
        """One file: rows, rejected rows, edition. Returns the records published."""
        sha256 = hashlib.sha256(data).hexdigest()
        before = self.position
        after = copy.deepcopy(before)
        after["files"][roster.name] = {
            "sha256": sha256,
            "marker_ns": roster.marker_mtime_ns,
            "size": roster.size,
        }
        previous = before["files"].get(roster.name)
        if previous is not None and previous["sha256"] == sha256:
            self.position = after  # the marker was touched again over the same content
            return 0
        entity = roster.kind.entity
        try:
            content = read_roster(roster, data, sha256)
        except RosterUnreadable as exc:
            reason = f"{roster.name}: {exc}"
            self.log.warning("roster unreadable", source=self.label, reason=reason)
            raw = data[:MAX_DEAD_LETTER_BYTES]
            self.emit_dead_letters(entity, [dead_letter("civil", entity, reason, raw, "")], after)
            self.position = after
            return 0
        for start in range(0, len(content.rows), self.batch_rows):
            batch = content.rows[start : start + self.batch_rows]
            self.emit(entity, [encode_item(roster.kind.schema, row) for row in batch], before)
        if content.problems:
            letters = [
                dead_letter("civil", entity, p.reason, p.raw, f"{roster.name}#{p.line}")
                for p in content.problems
            ]
            self.emit_dead_letters(entity, letters, before)
        self.emit(EDITIONS, [encode_dict("RosterEdition", self._edition(roster, sha256, content))],
                  after)  # fmt: skip
        self.position = after
        self.log.info(
            "roster published",
            source=self.label,
            file=roster.name,
            rows=len(content.rows),
            rejected=len(content.problems),
        )
        return len(content.rows) + 1

    @staticmethod
    def _edition(roster: RosterFile, sha256: str, content: RosterContent) -> dict[str, Any]:
        return {
            "allowance": roster.kind.allowance,
            "file_name": roster.name,
            "month": roster.month,
            "file_time": roster.completed_at,
            "file_sha256": sha256,
            "rows": len(content.rows),
            "rejected": len(content.problems),
        }
