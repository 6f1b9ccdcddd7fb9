"""Several ingest processes share one connector group: each source has one owner at a time.

Two real processes (``tests.connectors.ingest_owner``, the real ``Ingest``)
share a configuration whose broker is the embedded Tansu, run as a
deployment's broker: checkpoints in the compacted topic, acknowledgement on
publish. The police tables (MariaDB simulator) and the civil ``jzdx`` table
(PostgreSQL simulator) change between phases; one owner is stopped, started
again and killed with SIGKILL. Every row version must end up published, no
source may be pulled by two processes at once, and a take-over must resume
from the committed checkpoint (not from the beginning: few duplicates).
"""

from __future__ import annotations

import itertools
import json
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from gridhub.schemas.serde import decode
from gridhub.simulators.civil_db import CivilDatabase
from gridhub.simulators.county import County, generate_county
from gridhub.simulators.police_db import PoliceDatabase

from gridhub.hub import create_topics
from gridhub.runtime.broker import EmbeddedBroker
from gridhub.runtime.files import read_json
from gridhub.runtime.topic_reader import read_topic
from gridhub.topics import Topics
from tests.connectors.conftest import Version, table_versions, version

BATCH_ROWS = 25
OWNER_COMMAND = (sys.executable, "-m", "tests.connectors.ingest_owner")
PULLED = {"police", "civil"}


class Owner:
    """One ingest process of the deployment."""

    def __init__(self, config: Path, name: str) -> None:
        self.config = config
        self.name = name
        self.status_file = config.parent / f"owner-{name}.json"
        self.log = config.parent / f"owner-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.status_file.unlink(missing_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*OWNER_COMMAND, str(self.config), str(self.status_file)],
                stderr=out,
                stdout=out,
            )

    def owned(self) -> set[str]:
        status = read_json(self.status_file) or {}
        if not status.get("running") or self.process is None or self.process.poll() is not None:
            return set()
        return set(status["owned"]) & PULLED

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=90) == 0, self.log.read_text()[-3000:]
        self.process = None

    def kill(self) -> float:
        """SIGKILL; returns when it died."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)
        self.process = None
        return time.time()

    def events(self) -> list[tuple[str, str, float]]:
        """(message, source, time) of every take-over and let-go it logged."""
        out = []
        for line in self.log.read_text("utf-8").splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if entry["message"] in ("taking over source", "let go of source"):
                stamp = datetime.fromisoformat(entry["ts"]).timestamp()
                out.append((entry["message"], entry["source"], stamp))
        return out


def ownership_intervals(owner: Owner, died_at: float | None) -> list[tuple[str, float, float]]:
    """(source, from, to) of each time the owner pulled a source."""
    intervals, started = [], {}
    for message, source, stamp in owner.events():
        if message == "taking over source":
            started[source] = stamp
        elif source in started:
            intervals.append((source, started.pop(source), stamp))
    for source, stamp in started.items():  # still owned when it stopped logging
        intervals.append((source, stamp, died_at if died_at is not None else time.time()))
    return intervals


def wait_until(predicate: Callable[[], bool], timeout: float = 90.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Published:
    """What the connectors published on the raw topics of the deployment."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self.bootstrap = bootstrap
        self.topics = topics

    def rows(self, source: str, entity: str) -> list[dict[str, Any]]:
        rows = []
        for _, value in read_topic(self.bootstrap, self.topics.raw(source, entity)):
            assert value is not None
            _, envelope = decode(value)
            rows += [decode(record)[1] for record in envelope["records"]]
        return rows

    def police(self, entity: str) -> list[Version]:
        return [version(entity, row) for row in self.rows("police", entity)]

    def civil(self) -> list[tuple[int, str]]:
        return [(int(row["id"]), row["xm"]) for row in self.rows("civil", "jzdx")]


def civil_versions(db: CivilDatabase) -> set[tuple[int, str]]:
    with db.connect() as conn:
        return {(int(i), str(xm)) for i, xm in conn.execute("SELECT id, xm FROM public.jzdx")}


@pytest.fixture
def civil_db() -> Iterator[CivilDatabase]:
    with CivilDatabase() as db:
        yield db


def test_two_owners_pull_each_source_once_and_take_over_without_a_gap(
    broker: EmbeddedBroker, police_db: PoliceDatabase, civil_db: CivilDatabase, tmp_path: Path
) -> None:
    county: County = generate_county(120, seed=5)
    police_db.load(county.syrk_rows, county.jq_rows)
    civil_ids = civil_db.load(county.jzdx_rows)
    topics = Topics(prefix=f"own{secrets.token_hex(5)}")
    config = tmp_path / "gridhub.toml"
    config.write_text(
        f'[hub]\ndata_dir = "data"\n[kafka]\nbootstrap = "{broker.bootstrap}"\n'
        f'topic_prefix = "{topics.prefix}"\ngroup_id = "{topics.prefix}"\n'
        f'[sources.police]\ndsn = "{police_db.dsn}"\npoll_seconds = 0.1\n'
        f"batch_rows = {BATCH_ROWS}\n"
        f'[sources.civil]\ndsn = "{civil_db.dsn}"\npoll_seconds = 0.1\n'
        f"batch_rows = {BATCH_ROWS}\n",
        "utf-8",
    )
    create_topics(broker.bootstrap, topics, 1)
    published = Published(broker.bootstrap, topics)
    expected_police = {e: set[Version]() for e in ("syrk", "jq")}
    expected_civil: set[tuple[int, str]] = set()

    def changed(phase: int) -> None:
        """Change some rows in both systems; remember every version now in them."""
        if phase:
            now = datetime.now().replace(microsecond=0)
            rows = county.syrk_rows[phase * 10 : phase * 10 + 30]
            police_db.upsert_syrk([dict(r, xm=f"{r['xm']}{phase}", gxsj=now) for r in rows])
            civil_db.upsert([{"id": i, "xm": f"改名{phase}-{i}"} for i in civil_ids[:20]])
        for entity in expected_police:
            expected_police[entity] |= table_versions(police_db, entity)
        expected_civil.update(civil_versions(civil_db))

    def all_published() -> bool:
        return all(
            expected_police[e] <= set(published.police(e)) for e in expected_police
        ) and expected_civil <= set(published.civil())

    a, b = Owner(config, "a"), Owner(config, "b")
    died_at = None
    try:
        changed(0)
        a.start()
        b.start()
        wait_until(
            lambda: a.owned() and b.owned() and a.owned() | b.owned() == PULLED,
            what="both owners to get a source each",
        )
        assert not a.owned() & b.owned()
        wait_until(all_published, what="the first backlog")

        changed(1)  # b stops cleanly: a takes its source over
        b.stop()
        wait_until(lambda: a.owned() == PULLED, what="a to own every source")
        wait_until(all_published, what="phase 1")

        b.start()
        wait_until(lambda: b.owned() and a.owned() | b.owned() == PULLED, what="b to rejoin")
        changed(2)  # a dies: b takes its sources over after the session timeout
        died_at = a.kill()
        wait_until(lambda: b.owned() == PULLED, what="b to own every source")
        wait_until(all_published, what="phase 2")
        changed(3)
        wait_until(all_published, what="phase 3")
        b.stop()
    finally:
        for owner in (a, b):
            if owner.process is not None:
                owner.process.kill()
                owner.process.wait()

    intervals = ownership_intervals(a, died_at) + ownership_intervals(b, None)
    for source in PULLED:
        spans = sorted((start, end) for name, start, end in intervals if name == source)
        assert len(spans) >= 3, spans  # it did move between the owners
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, f"{source} was pulled by two processes at once: {spans}"

    # resumed from the committed checkpoints: at most a batch in flight per entity again
    for entity, versions in expected_police.items():
        assert len(published.police(entity)) <= len(versions) + 2 * BATCH_ROWS
    assert len(published.civil()) <= len(expected_civil) + 2 * BATCH_ROWS
