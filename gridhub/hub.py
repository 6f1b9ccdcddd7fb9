"""One hub process: broker (embedded or not), store, connectors, stream workers, sink.

``gridhub run`` and ``gridhub demo`` both build a :class:`Hub` and call
:meth:`Hub.run`. Start-up order matters: the store is migrated and the
reference data loaded before anything consumes, and the topics exist before
any connector publishes. Shutdown (SIGTERM/SIGINT) stops the connectors,
lets Faust finish the batch in hand and commit, then stops the broker.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from gridhub.config import GridhubSettings
from gridhub.connectors.base.checkpoint import Checkpoint, FileCheckpointStore, SinkAcknowledgements
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.connectors.base.source import Source
from gridhub.connectors.public_security.source import PoliceSource
from gridhub.errors import ConfigError
from gridhub.logs import configure_logging, get_logger
from gridhub.reference import ReferenceData, load_reference
from gridhub.runtime.broker import EmbeddedBroker
from gridhub.store.client import close_embedded, open_client
from gridhub.store.migrations import migrate
from gridhub.streams.identity import ResidentKeyer, load_or_create_key
from gridhub.streams.merge_resident import MergeContext, ResidentMerger, ResidentStore
from gridhub.streams.sink import BatchingSink
from gridhub.streams.topology import StageCounters, Topology, build_app
from gridhub.topics import SOURCE_ENTITIES, Topics

log = get_logger("hub")

STATUS_FILE = "status.json"
CONTRACT_TABLES = ("resident", "area", "events", "dead_letters", "unlinked")


def create_topics(bootstrap: str, topics: Topics, partitions: int) -> None:
    """Create the hub's topics if missing (raw topics keep one partition: source order)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="gridhub-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(name, 1, 1) for name in topics.all_raw() if name not in existing]
        wanted += [
            NewTopic(name, partitions, 1)
            for name in (topics.person, topics.sink)
            if name not in existing
        ]
        if topics.dead_letters not in existing:
            wanted.append(NewTopic(topics.dead_letters, 1, 1))
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
    finally:
        admin.close()


class Hub:
    """Everything one ``gridhub run`` process owns."""

    def __init__(self, settings: GridhubSettings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.topics = Topics(settings.kafka.topic_prefix)
        self.broker: EmbeddedBroker | None = None
        self.sources: list[Source] = []
        self.threads: list[threading.Thread] = []
        self.stop_event = threading.Event()
        self.counters = StageCounters()
        self.checkpoints: dict[tuple[str, str], Checkpoint] = {}
        self.started_at = datetime.now(UTC)
        self.app: faust.App | None = None
        self.on_tick_hooks: list[Callable[[Hub], None]] = []
        self.reference: ReferenceData | None = None
        self.topology: Topology | None = None

    # -- start-up -----------------------------------------------------------------------

    def _bootstrap(self) -> str:
        if not self.settings.kafka.embedded:
            return self.settings.kafka.bootstrap
        self.broker = EmbeddedBroker(self.data_dir / "logs" / "broker.log")
        self.broker.start()
        return self.broker.bootstrap

    def _keyer(self) -> ResidentKeyer:
        secret = self.settings.hub.pseudonym_key
        if secret is not None:
            return ResidentKeyer(secret.get_secret_value().encode("utf-8"))
        return ResidentKeyer(load_or_create_key(self.data_dir / "pseudonym.key"))

    def _load_reference(self) -> ReferenceData:
        folder = self.settings.path(self.settings.reference.dir)
        if not folder.is_dir():
            raise ConfigError(
                f"reference.dir {folder} does not exist; it must hold grids.csv, "
                "addresses.csv and crosswalk.csv"
            )
        return load_reference(folder)

    def _make_sources(self, bootstrap: str) -> None:
        store = FileCheckpointStore(self.data_dir / "checkpoints")
        ack_on_publish = not self.settings.kafka.embedded
        police = self.settings.sources.police
        if police is not None:
            checkpoints = {e: Checkpoint(store, "police", e) for e in SOURCE_ENTITIES["police"]}
            self.checkpoints.update({("police", e): c for e, c in checkpoints.items()})
            publisher = EnvelopePublisher(bootstrap, self.topics, client_id="gridhub-police")
            self.sources.append(
                PoliceSource(police, publisher, checkpoints, ack_on_publish=ack_on_publish)
            )
        for name in self.settings.sources.configured():
            if name != "police":
                log.warning(
                    "source configured but its connector is not built yet; not pulled",
                    source=name,
                )

    def prepare(self) -> faust.App:
        """Start the broker and store, migrate, create topics, build connectors and agents."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.reference = self._load_reference()
        client = open_client(self.settings)
        migrate(client, self.settings.clickhouse.database)
        bootstrap = self._bootstrap()
        create_topics(bootstrap, self.topics, self.settings.kafka.partitions)
        self._make_sources(bootstrap)
        acks = SinkAcknowledgements(self.checkpoints)
        on_part_done = acks.part_done if self.settings.kafka.embedded else None
        sink = BatchingSink(client, self.settings.clickhouse.database, on_part_done=on_part_done)
        dead_sink = BatchingSink(
            client, self.settings.clickhouse.database, on_part_done=on_part_done, lock=sink.lock
        )
        self.resident_store = ResidentStore(self.data_dir / "state" / "residents")
        topology = Topology(
            app_id=self.settings.kafka.group_id,
            bootstrap=bootstrap,
            topics=self.topics,
            partitions=self.settings.kafka.partitions,
            keyer=self._keyer(),
            merger=ResidentMerger(self.resident_store, MergeContext(self.reference)),
            sink=sink,
            dead_sink=dead_sink,
            batch_rows=self.settings.clickhouse.batch_rows,
            batch_seconds=self.settings.clickhouse.batch_seconds,
            counters=self.counters,
            on_tick=lambda app: self.tick(),
        )
        self.sink = sink
        self.client = client
        self.topology = topology
        self.app = build_app(topology)
        return self.app

    def start_sources(self) -> None:
        """One thread per source; a failing source never stops another."""
        for source in self.sources:
            thread = threading.Thread(
                target=source.run,
                args=(self.stop_event,),
                name=f"source-{source.name}",
                daemon=True,
            )
            thread.start()
            self.threads.append(thread)

    # -- running ------------------------------------------------------------------------

    def run(self, *, loglevel: str = "WARNING") -> None:
        """Run until SIGTERM/SIGINT (or until a hook calls :meth:`request_stop`)."""
        app = self.app or self.prepare()

        @app.task
        async def _start_sources() -> None:
            configure_logging(json_lines=self.settings.hub.log_format == "json")
            self.start_sources()

        worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
        self.worker = worker
        try:
            worker.execute_from_commandline()
        except SystemExit:
            pass
        finally:
            self.shutdown()

    def request_stop(self) -> None:
        """Ask the worker to stop as SIGTERM would."""
        self.stop_event.set()
        worker = getattr(self, "worker", None)
        if worker is not None:
            # exactly what mode's own SIGTERM handler schedules, from any thread
            worker.loop.call_soon_threadsafe(worker._schedule_shutdown, signal.SIGTERM)

    def shutdown(self) -> None:
        """Stop connectors, close state, stop the broker. Safe to call twice."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.threads.clear()
        for source in self.sources:
            source.publisher.close()
        self.sources.clear()
        if self.topology is not None:
            self.resident_store.close()
            self.topology = None
        if self.broker is not None:
            self.broker.stop()
        self.write_status(final=True)
        close_embedded()

    # -- progress -----------------------------------------------------------------------

    def caught_up(self) -> bool:
        """Every source polled to the end and, on the embedded broker, everything stored."""
        if not self.sources or not all(s.health.caught_up for s in self.sources):
            return False
        return all(c.outstanding == 0 for c in self.checkpoints.values())

    def tick(self) -> None:
        """Once a second: write the status file and run hooks (the demo waits here)."""
        self.write_status()
        for hook in list(self.on_tick_hooks):
            hook(self)

    def table_counts(self) -> dict[str, int]:
        """Rows per contract table (FINAL for the resident and area tables)."""
        counts: dict[str, int] = {}
        db = self.settings.clickhouse.database
        with self.sink.lock:
            for table in CONTRACT_TABLES:
                final = " FINAL" if table in ("resident", "area") else ""
                rows = self.client.query(f"SELECT count() FROM {db}.{table}{final}").result_rows
                counts[table] = int(rows[0][0])
        return counts

    def lag(self) -> dict[str, dict[str, int]]:
        """Per topic/partition: fetch high watermark minus committed offset."""
        out: dict[str, dict[str, int]] = {}
        if self.app is None:
            return out
        consumer = self.app.consumer
        try:
            assignment = consumer.assignment()
        except Exception:
            return out
        for tp in sorted(assignment):
            try:
                high = consumer.highwater(tp)
            except Exception:
                continue
            if high is None:
                continue
            committed = getattr(consumer, "_committed_offset", {}).get(tp) or 0
            out.setdefault(tp.topic, {})[str(tp.partition)] = max(0, int(high) - int(committed))
        return out

    def status(self) -> dict[str, Any]:
        """What ``gridhub status`` shows."""
        return {
            "pid": os.getpid(),
            "written_at": datetime.now(UTC).isoformat(),
            "started_at": self.started_at.isoformat(),
            "broker": {
                "bootstrap": self.broker.bootstrap
                if self.broker
                else self.settings.kafka.bootstrap,
                "embedded": self.settings.kafka.embedded,
            },
            "sources": {s.name: s.health.as_dict() for s in self.sources},
            "stages": {
                "routed": self.counters.routed,
                "dead_letters": self.counters.dead_letters,
                "merged": self.counters.merged,
                "sunk_rows": self.counters.sunk_rows,
                "sink_retries": self.counters.sink_retries,
                "last_sink_at": self.counters.last_sink_at.isoformat()
                if self.counters.last_sink_at
                else None,
            },
            "lag": self.lag(),
            "tables": self.table_counts() if getattr(self, "sink", None) else {},
            "caught_up": self.caught_up(),
        }

    def write_status(self, *, final: bool = False) -> None:
        """Write ``data_dir/status.json`` atomically."""
        try:
            status = self.status()
        except Exception as exc:  # status must never take the hub down
            log.warning("status not written", error=str(exc))
            return
        if final:
            status["stopped_at"] = datetime.now(UTC).isoformat()
        path = self.data_dir / STATUS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, ensure_ascii=False, indent=1), "utf-8")
        tmp.replace(path)


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """The last status a hub wrote in ``data_dir``, or None."""
    path = data_dir / STATUS_FILE
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def wait(seconds: float) -> None:
    """Sleep (a seam for tests that drive time)."""
    time.sleep(seconds)
