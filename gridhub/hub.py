"""One ``gridhub run``: broker (embedded or not), store, ingest, stream workers, sink.

``gridhub run`` and ``gridhub demo`` both build a :class:`Hub` and call
:meth:`Hub.run`. Start-up order matters: the store is migrated and the
reference data loaded before anything consumes, and the topics exist before
any connector publishes. By default the stages run in child processes, so
that the operating system spreads them over the cores: the connectors
(``gridhub.ingest_worker``), the route stage (``gridhub.route_worker``) and
the merge (``gridhub.merge_worker``); this process holds the store and runs
the sink. ``[hub] merge_processes = 0`` merges here, and
``[hub] ingest_process = false`` keeps everything in this process. Shutdown
(SIGTERM/SIGINT) stops the connectors, on the embedded broker waits until the
stages stored what the topics hold (:meth:`Hub.drain`), stops the other
children, lets Faust finish the batch in hand and commit, then stops the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError
from prometheus_client import CollectorRegistry

from gridhub.config import GridhubSettings
from gridhub.connectors.base.checkpoint import SinkAcknowledgements
from gridhub.connectors.http_ingest import HttpIngest
from gridhub.dashboard.data import Overview
from gridhub.errors import ConfigError, GridhubError
from gridhub.health import RELOAD_PATH, HealthServer, health_report, start_health_server
from gridhub.ingest import INGEST_STATUS_FILE, Ingest
from gridhub.logs import configure_logging, get_logger
from gridhub.metrics import SinkMetrics, StatusCollector, render
from gridhub.reference import ReferenceData, ReferenceDataError, load_reference
from gridhub.registry.server import RegistryServer, serve_registry
from gridhub.registry.subjects import register_raw_subjects
from gridhub.runtime.broker import (
    EmbeddedBroker,
    broker_answers,
    die_with_parent,
    stop_child,
)
from gridhub.runtime.files import read_json, write_json_atomic
from gridhub.runtime.heap import freeze_startup_heap
from gridhub.schemas.registry_client import SchemaRegistryClient
from gridhub.store.area import AreaRefresher, load_grid_map
from gridhub.store.client import close_embedded, open_client, store_path
from gridhub.store.migrations import migrate
from gridhub.store.serve import StoreServer
from gridhub.streams.identity import ResidentKeyer, load_or_create_key
from gridhub.streams.merge_resident import MergeContext, ResidentMerger, policy_with
from gridhub.streams.phone_link import PhoneIndex, PhoneStore
from gridhub.streams.replace_unlinked import replace_unlinked
from gridhub.streams.sink import BatchingSink
from gridhub.streams.state_store import PartitionedResidentStore
from gridhub.streams.topology import (
    REFERENCE_RELOAD,
    StageCounters,
    Topology,
    build_app,
    notify_partitions,
)
from gridhub.streams.writer_schema import WriterSchemas
from gridhub.topics import Topics

log = get_logger("hub")

STATUS_FILE = "status.json"
CONTRACT_TABLES = ("resident", "area", "events", "dead_letters", "unlinked")
ROUTE_STATUS_FILE = "status-route.json"


def merge_status_file(index: int) -> str:
    """The status file of merge process ``index``."""
    return f"status-merge-{index}.json"


CHILD_STATUS_MAX_AGE_S = 5.0
TABLE_COUNT_INTERVAL_S = 3.0
DRAIN_POLL_S = 0.25
CLEAN_STOP_FILE = Path("state") / "clean-stop"
"""Written when a stop stored everything the embedded broker held: the next start then
need not send the phone stage's claims and copies again (see ``streams/phone_link.py``)."""
RESEND_ENV = "GRIDHUB_RESEND_LOST"
"""Tells the merge processes whether the last stop may have lost messages (``1``)."""
STATUS_INTERVAL_S = 1.0
"""Children write their status, and Faust commits, once a second."""


def resident_keyer(settings: GridhubSettings) -> ResidentKeyer:
    """The deployment's resident keyer: the configured key, else the one in ``data_dir``."""
    secret = settings.hub.pseudonym_key
    if secret is not None:
        return ResidentKeyer(secret.get_secret_value().encode("utf-8"))
    return ResidentKeyer(load_or_create_key(settings.data_dir / "pseudonym.key"))


def load_reference_dir(settings: GridhubSettings) -> ReferenceData:
    """The grid map from ``[reference] dir``.

    Raises:
        ConfigError: the folder does not exist.
    """
    folder = settings.path(settings.reference.dir)
    if not folder.is_dir():
        raise ConfigError(
            f"reference.dir {folder} does not exist; it must hold grids.csv, "
            "addresses.csv and crosswalk.csv"
        )
    return load_reference(folder)


def pipeline_ready(settings: GridhubSettings) -> bool:
    """Whether the route process and every merge process have their partitions.

    The connectors wait for this before they pull (see ``ingest_worker``): records
    pulled earlier only wait in the broker, and a merge process joining its group
    late would stop the merge for a rebalance in the middle of the first backlog.
    """
    data_dir = settings.data_dir
    route = read_json(data_dir / ROUTE_STATUS_FILE) or {}
    if not route.get("assigned"):
        return False
    merges = settings.hub.merge_processes
    assigned: set[int] = set()
    for index in range(merges):
        status = read_json(data_dir / merge_status_file(index)) or {}
        if not status.get("assigned"):
            return False
        assigned.update(status["assigned"])
    return merges == 0 or len(assigned) == settings.kafka.partitions


def consumer_lag(app: faust.App) -> dict[str, dict[str, int]]:
    """Per assigned topic/partition: the fetch high watermark minus the committed offset.

    High watermarks come from fetch responses, not ListOffsets, which on the
    embedded broker can answer short of the log end.
    """
    out: dict[str, dict[str, int]] = {}
    consumer = app.consumer
    try:
        assignment = consumer.assignment()
    except Exception:
        return out
    committed_offsets = getattr(consumer, "_committed_offset", {})
    for tp in sorted(assignment):
        try:
            high = consumer.highwater(tp)
        except Exception:
            continue
        if high is None:
            continue
        committed = committed_offsets.get(tp) or 0
        out.setdefault(tp.topic, {})[str(tp.partition)] = max(0, int(high) - int(committed))
    return out


def create_topics(bootstrap: str, topics: Topics, partitions: int) -> None:
    """Create the hub's topics if missing (raw topics keep one partition: source order)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="gridhub-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(name, 1, 1) for name in topics.all_raw() if name not in existing]
        wanted += [
            NewTopic(name, partitions, 1)
            for name in (topics.person, topics.phones, topics.rows)
            if name not in existing
        ]
        wanted += [
            NewTopic(name, 1, 1)
            for name in (topics.dead_letters, topics.acks)
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
    finally:
        admin.close()


class DrainingWorker(faust.Worker):
    """Faust's worker, whose first stop signal runs ``drain`` (in a thread, while the
    agents go on storing) before the usual shutdown; a second signal stops at once."""

    def __init__(self, *args: Any, drain: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drain = drain
        self._draining: asyncio.Future[None] | None = None

    def _schedule_shutdown(self, sig: signal.Signals) -> None:
        if self._draining is not None:
            super()._schedule_shutdown(sig)
            return

        async def drain_then_stop() -> None:
            try:
                await asyncio.to_thread(self._drain)
            except Exception as exc:  # a failed drain must not keep the hub from stopping
                log.error("drain before stop failed", error=f"{type(exc).__name__}: {exc}")
            super(DrainingWorker, self)._schedule_shutdown(sig)

        self._draining = asyncio.ensure_future(drain_then_stop(), loop=self.loop)


class Hub:
    """Everything one ``gridhub run`` process owns."""

    def __init__(self, settings: GridhubSettings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.topics = Topics(settings.kafka.topic_prefix)
        self.broker: EmbeddedBroker | None = None
        self.ingest: Ingest | None = None
        self.ingest_process: subprocess.Popen[bytes] | None = None
        self.route_process: subprocess.Popen[bytes] | None = None
        self.merge_processes: list[subprocess.Popen[bytes]] = []
        self.resident_store: PartitionedResidentStore | None = None
        self.phone_store: PhoneStore | None = None
        self.area: AreaRefresher | None = None
        self.reference: ReferenceData | None = None
        self.bootstrap: str | None = None
        self.counters = StageCounters()
        self.started_at = datetime.now(UTC)
        self.app: faust.App | None = None
        self.on_tick_hooks: list[Callable[[Hub], None]] = []
        self.topology: Topology | None = None
        self._counts: tuple[float, dict[str, int]] | None = None
        self.store_error = ""
        """Why the store did not answer the last count ("" when it did)."""
        self.health: HealthServer | None = None
        self.store_server: StoreServer | None = None
        self.http_ingest: HttpIngest | None = None
        self.last_status: dict[str, Any] | None = None
        self.metrics = CollectorRegistry()
        self.overview: Overview | None = None
        self.metrics.register(
            StatusCollector(
                lambda: self.last_status,
                lambda: self.overview.dead_letter_counts() if self.overview else [],
            )
        )
        self.registry_server: RegistryServer | None = None
        self.registry: SchemaRegistryClient | None = None
        self.drained = False
        """The stop in progress stored everything the embedded broker held."""
        self.drain_waiting: dict[str, int] = {}
        """What a stop's drain still waits for: records per topic[partition], sink rows."""
        self.child_env: dict[str, str] = {}
        """Set in the children's environment (the embedded registry's bound URL)."""

    # -- start-up -----------------------------------------------------------------------

    @property
    def merge_children(self) -> int:
        """Merge processes to start (none without ingest processes: then all runs here)."""
        return self.settings.hub.merge_processes if self.settings.hub.ingest_process else 0

    def _bootstrap(self) -> str:
        if not self.settings.kafka.embedded:
            return self.settings.kafka.bootstrap
        self.broker = EmbeddedBroker(self.data_dir / "logs" / "broker.log")
        self.broker.start()
        return self.broker.bootstrap

    def _start_child(
        self, module: str, bootstrap: str, status_file: str, index: int = 0
    ) -> subprocess.Popen[bytes]:
        """Start ``python -m gridhub.<module>`` with this hub's configuration; it logs to
        ``data_dir/logs/<stage>[-<index>].log`` and dies with this process."""
        (self.data_dir / status_file).unlink(missing_ok=True)
        command = [sys.executable, "-m", f"gridhub.{module}", "--bootstrap", bootstrap]
        command += ["--index", str(index)]
        config = self.settings.config_path
        if config is not None and config.exists():
            command += ["--config", str(config)]
        stage = module.removesuffix("_worker")
        log_file = self.data_dir / "logs" / (f"{stage}-{index}.log" if index else f"{stage}.log")
        with log_file.open("ab") as out:
            return subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
                env={**os.environ, **self.child_env},
            )

    def prepare(self) -> faust.App:
        """Start broker and store, migrate, create topics, build ingest and agents."""
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        clean_stop = self.data_dir / CLEAN_STOP_FILE
        resend = self.settings.kafka.embedded and not clean_stop.exists()
        clean_stop.unlink(missing_ok=True)
        self.child_env[RESEND_ENV] = "1" if resend else "0"
        registry = self._register_schemas()
        reference = load_reference_dir(self.settings)
        client = open_client(self.settings)
        migrate(client, self.settings.clickhouse.database)
        bootstrap = self._bootstrap()
        self.bootstrap = bootstrap
        create_topics(bootstrap, self.topics, self.settings.kafka.partitions)
        keyer = resident_keyer(self.settings)  # creates the key file before any child reads it
        separate = self.settings.hub.ingest_process
        on_part_done: Callable[[str, str, int, int, int], None] | None = None
        if not separate:
            self.ingest = Ingest(self.settings, bootstrap, self.topics)
            if self.settings.kafka.embedded:
                on_part_done = SinkAcknowledgements(self.ingest.checkpoints).part_done
        self.overview = Overview(
            lambda: self.last_status,
            lambda: self.reader,
            self.settings.clickhouse.database,
            self.settings.hub.dashboard_sample_seconds,
        )
        sink_metrics = SinkMetrics(self.metrics, on_fresh=self.overview.stored_freshness)
        self.sink = BatchingSink(client, self.settings.clickhouse.database, metrics=sink_metrics)
        self.dead_sink = BatchingSink(
            client, self.settings.clickhouse.database, lock=self.sink.lock, metrics=sink_metrics
        )
        moved = self._use_map(client, reference)
        if moved is not None:
            log.info("grid map changed since the last run", unlinked_re_placed=moved)
        self.area = AreaRefresher(
            client,
            self.settings.clickhouse.database,
            self.sink.lock,
            every=self.settings.clickhouse.area_refresh_seconds,
            max_age=self.settings.clickhouse.area_max_age_seconds,
        )
        self.client = client
        self.reader = (
            open_client(self.settings, reader=True) if self.settings.clickhouse.embedded else client
        )
        merger = phone_index = None
        if not self.merge_children:
            partitions = self.settings.kafka.partitions
            self.resident_store = PartitionedResidentStore(
                self.data_dir / "state" / "residents", partitions
            )
            policy = policy_with(self.settings.survivorship.overrides())
            merger = ResidentMerger(self.resident_store, MergeContext(reference, policy))
            self.phone_store = PhoneStore(self.data_dir / "state" / "phones", partitions)
            phone_index = PhoneIndex(self.phone_store)
        self.topology = Topology(
            app_id=self.settings.kafka.group_id,
            bootstrap=bootstrap,
            topics=self.topics,
            partitions=self.settings.kafka.partitions,
            keyer=keyer,
            merger=merger,
            phone_index=phone_index,
            resend=resend,
            sink=self.sink,
            dead_sink=self.dead_sink,
            batch_rows=self.settings.clickhouse.batch_rows,
            batch_seconds=self.settings.clickhouse.batch_seconds,
            counters=self.counters,
            on_tick=lambda app: self.tick(),
            reference=lambda: load_reference_dir(self.settings),
            writer_schemas=None if separate else WriterSchemas(registry),
        )
        if separate and self.settings.kafka.embedded:
            on_part_done = self._queue_ack
        self.sink.on_part_done = on_part_done
        self.dead_sink.on_part_done = on_part_done
        self.app = build_app(self.topology, with_route=not separate)
        if separate:
            self.ingest_process = self._start_child("ingest_worker", bootstrap, INGEST_STATUS_FILE)
            self.route_process = self._start_child("route_worker", bootstrap, ROUTE_STATUS_FILE)
        self.merge_processes = [
            self._start_child("merge_worker", bootstrap, merge_status_file(index), index)
            for index in range(self.merge_children)
        ]
        if self.settings.hub.ingest_token is not None:
            self.http_ingest = HttpIngest(self.settings.hub, bootstrap, self.topics)
        self.health = start_health_server(
            self.settings.hub.listen,
            self.health_report,
            self.http_ingest,
            {RELOAD_PATH: self._reload_answer},
            metrics=lambda: render(self.metrics),
            overview=self.overview.answer,
        )
        if self.settings.clickhouse.embedded:
            self._serve_store()
        return self.app

    def _register_schemas(self) -> SchemaRegistryClient:
        """Serve the embedded schema registry when configured, then register the raw
        topics' subjects (``gridhub.registry.subjects``): a refusal stops the start."""
        config = self.settings.registry
        url = config.url
        if config.embedded:
            self.registry_server = serve_registry(config.serve, self.data_dir)
            url = self.registry_server.url
            self.child_env["GRIDHUB_REGISTRY__URL"] = url
        self.registry = SchemaRegistryClient(url, timeout=config.timeout_seconds)
        try:
            register_raw_subjects(self.registry, self.topics)
        except GridhubError:
            self._stop_registry()
            raise
        return self.registry

    def _stop_registry(self) -> None:
        if self.registry is not None:
            self.registry.close()
        if self.registry_server is not None:
            self.registry_server.stop()
            self.registry_server = None

    def _serve_store(self) -> None:
        try:
            self.store_server = StoreServer(
                self.settings.clickhouse.serve, str(store_path(self.settings))
            )
        except OSError as exc:
            log.warning(
                "embedded store not served; `gridhub query` works only once the hub stops",
                listen=self.settings.clickhouse.serve,
                reason=str(exc),
            )
            return
        self.store_server.start()

    def _queue_ack(self, source: str, entity: str, seq: int, part: int, parts: int) -> None:
        assert self.topology is not None
        self.topology.stored_parts.append((source, entity, seq, part, parts))

    # -- running ------------------------------------------------------------------------

    def run(self, *, loglevel: str = "WARNING") -> None:
        """Run until SIGTERM/SIGINT (or until a hook calls :meth:`request_stop`)."""
        app = self.app or self.prepare()

        @app.task
        async def _start_ingest() -> None:
            configure_logging(json_lines=self.settings.hub.log_format == "json")
            if self.ingest is not None:
                self.ingest.start()

        drain = self.settings.hub.drain_seconds if self.settings.kafka.embedded else 0.0
        worker = DrainingWorker(
            app,
            drain=lambda: self._drain_logged(drain),
            loglevel=loglevel,
            quiet=True,
            redirect_stdouts=False,
        )
        worker.spinner = None  # no terminal spinner: logs and the demo's tables stay clean
        self.worker = worker
        freeze_startup_heap()
        try:
            worker.execute_from_commandline()
        except SystemExit:
            pass
        finally:
            self.shutdown()

    def drain(self, timeout: float) -> bool:
        """Stop pulling, then let every stage store what the topics already hold before
        the children stop; True when everything was stored within ``timeout`` s.

        Only on the embedded broker, which forgets its topics at stop: a connector's
        batch would be pulled again from its checkpoint, but a record a system published
        itself would be gone. Lag comes from fetch high watermarks (the children's status
        files and this process's consumer), read only once a status is a commit newer than
        the moment pulling stopped.
        """
        deadline = time.monotonic() + timeout
        if self.ingest is not None:
            self.ingest.stop()
        if self.ingest_process is not None:
            stop_child(self.ingest_process, timeout=20)
        stopped_at = datetime.now(UTC)
        children = [self.route_process, *self.merge_processes]
        while not self._pipeline_empty(stopped_at, children):
            if time.monotonic() > deadline:
                return False
            time.sleep(DRAIN_POLL_S)
        for process in children:
            if process is not None:
                stop_child(process, timeout=20)  # each finishes the batch in hand
        children_stopped_at = datetime.now(UTC)  # this consumer fetches what they sent last
        while not self._pipeline_empty(children_stopped_at, []):
            if time.monotonic() > deadline:
                return False
            time.sleep(DRAIN_POLL_S)
        return True

    def _pipeline_empty(
        self, since: datetime, children: list[subprocess.Popen[bytes] | None]
    ) -> bool:
        """No lag on any topic, by the statuses of ``children`` written a commit after
        ``since`` and by this process's own consumer, and no rows waiting in the sink."""
        names = [ROUTE_STATUS_FILE] if self.route_process in children else []
        names += [merge_status_file(i) for i, p in enumerate(self.merge_processes) if p in children]
        fresh = since.timestamp() + STATUS_INTERVAL_S
        lags: list[dict[str, dict[str, int]]] = []
        for name in names:
            status = read_json(self.data_dir / name)
            if status is None or datetime.fromisoformat(status["written_at"]).timestamp() < fresh:
                return False
            lags.append(status.get("lag", {}))
        if self.app is not None:
            lags.append(consumer_lag(self.app))
        if datetime.now(UTC).timestamp() < fresh:
            return False  # this consumer's commits are as late as the children's
        t = self.topology
        pending = t.sink.pending_rows + t.dead_sink.pending_rows if t is not None else 0
        self.drain_waiting = {
            f"{topic}[{partition}]": n
            for lag in lags
            for topic, partitions in lag.items()
            for partition, n in partitions.items()
            if n
        }
        if pending:
            self.drain_waiting["sink"] = pending
        return not self.drain_waiting

    def request_stop(self) -> None:
        """Ask the worker to stop as SIGTERM would (from any thread)."""
        worker = getattr(self, "worker", None)
        if worker is not None:
            worker.loop.call_soon_threadsafe(worker._schedule_shutdown, signal.SIGTERM)

    def _drain_logged(self, timeout: float) -> None:
        if timeout <= 0:
            return
        started = time.monotonic()
        if self.drain(timeout):
            self.drained = True
            log.info("topics drained before stop", seconds=round(time.monotonic() - started, 1))
        else:
            log.warning(
                "stopping with records still on the embedded broker's topics; records "
                "published by the connectors are pulled again at the next start, others "
                "must be sent again",
                waited_seconds=timeout,
                waiting=self.drain_waiting,
                setting="[hub] drain_seconds",
            )

    def _stop_children(self) -> None:
        """Stop pulling first, then the merge (which finishes its batch in hand)."""
        if self.ingest is not None:
            self.ingest.stop()
        children = [self.ingest_process, self.route_process, *self.merge_processes]
        self.ingest_process = self.route_process = None
        self.merge_processes = []
        for process in children:
            if process is not None:
                stop_child(process, timeout=20)

    def processes_alive(self) -> dict[str, bool]:
        """Whether the ingest side and the merge run (in this process or in a child)."""

        def running(process: subprocess.Popen[bytes] | None) -> bool:
            return process is not None and process.poll() is None

        return {
            "ingest": self.ingest is not None or running(self.ingest_process),
            "route": self.ingest is not None or running(self.route_process),
            "merge": all(running(process) for process in self.merge_processes),
        }

    def health_report(self) -> dict[str, Any]:
        """What ``GET /health`` answers."""
        status = self.last_status or self.status()
        return health_report(
            status,
            broker_up=broker_answers(status["broker"]["bootstrap"]),
            processes=self.processes_alive(),
        )

    def reload_reference(self) -> dict[str, Any]:
        """``gridhub reference reload``: load the grid map again, store it, re-place the
        records without a resident, and send every partition of ``person`` the control
        record that makes the merge re-place the residents the new map moves.

        Raises:
            ConfigError: the folder is missing.
            ReferenceDataError: a file of the folder is wrong (the map in use stays).
        """
        assert self.client is not None
        reference = load_reference_dir(self.settings)
        if self.reference is not None and reference.fingerprint == self.reference.fingerprint:
            return {"changed": False, "fingerprint": reference.fingerprint}
        moved = self._use_map(self.client, reference) or 0
        log.info("grid map reloaded", grids=len(reference.grids), unlinked_re_placed=moved)
        return {
            "changed": True,
            "fingerprint": reference.fingerprint,
            "grids": len(reference.grids),
            "unlinked_re_placed": moved,
            "partitions_notified": self.settings.kafka.partitions,
        }

    def _use_map(self, client: Any, reference: ReferenceData) -> int | None:
        """Store ``reference`` as the grid map. When it differs from the map stored before,
        re-place the records without a resident and have every merge partition re-place
        its residents (quiet partitions included); returns how many records moved, or None
        when the map is the stored one (or the store held none: a first start)."""
        assert self.sink is not None and self.bootstrap is not None
        database = self.settings.clickhouse.database
        with self.sink.lock:
            before = load_grid_map(client, database, reference)
            changed = before is not None and before != reference.fingerprint
            moved = replace_unlinked(client, database, reference) if changed else None
        self.reference = reference
        if changed:
            partitions = self.settings.kafka.partitions
            notify_partitions(self.bootstrap, self.topics, partitions, REFERENCE_RELOAD)
        return moved

    def _reload_answer(self) -> tuple[int, dict[str, Any]]:
        """``POST /admin/reference/reload``: the reload's outcome, or why it was refused."""
        try:
            return 200, self.reload_reference()
        except (ConfigError, ReferenceDataError) as exc:
            return 400, {"error": str(exc)}
        except Exception as exc:  # reported to the operator; the hub goes on
            log.error("reference reload failed", error=f"{type(exc).__name__}: {exc}")
            return 500, {"error": f"{type(exc).__name__}: {exc}"}

    def shutdown(self) -> None:
        """Stop ingest, close state, stop the broker, close the store. Safe to call twice."""
        if self.health is not None:
            self.health.stop()
            self.health = None
        if self.http_ingest is not None:
            self.http_ingest.close()
            self.http_ingest = None
        if self.store_server is not None:
            self.store_server.stop()
            self.store_server = None
        self._stop_children()
        self._stop_registry()
        if self.topology is not None:
            if self.area is not None:
                self.area.refresh(self.counters.sunk_rows)  # what is stored now, counted
            self._counts = None  # the final status counts what is stored now
            self.write_status(final=True)
            if self.resident_store is not None:
                self.resident_store.close()
            if self.phone_store is not None:
                self.phone_store.close()
            self.topology = None
        if self.broker is not None:
            self.broker.stop()
        close_embedded()
        if self.drained:
            (self.data_dir / CLEAN_STOP_FILE).parent.mkdir(parents=True, exist_ok=True)
            (self.data_dir / CLEAN_STOP_FILE).touch()
            self.drained = False

    # -- progress -----------------------------------------------------------------------

    def ingest_status(self) -> dict[str, Any]:
        """The ingest side's sources and progress, from this process or the ingest process."""
        if self.ingest is not None:
            return self.ingest.status()
        status = self._child_status(INGEST_STATUS_FILE, self.ingest_process)
        if status is None:
            return {"sources": {}, "caught_up": False}
        route = self._child_status(ROUTE_STATUS_FILE, self.route_process) or {}
        status["lag"] = {**status.get("lag", {}), **route.get("lag", {})}
        status["routed"] = route.get("routed", 0)
        status["dead_letters"] = route.get("dead_letters", 0)
        return status

    def merge_status(self) -> dict[str, Any]:
        """The merge's progress, from this process or summed over the merge processes."""
        if not self.merge_children:
            return {"merged": self.counters.merged}
        merged = 0
        lag: dict[str, dict[str, int]] = {}
        for index, process in enumerate(self.merge_processes):
            status = self._child_status(merge_status_file(index), process) or {}
            merged += int(status.get("merged", 0))
            for topic, partitions in status.get("lag", {}).items():
                lag.setdefault(topic, {}).update(partitions)
        return {"merged": merged, "lag": lag}

    def _child_status(
        self, name: str, process: subprocess.Popen[bytes] | None
    ) -> dict[str, Any] | None:
        """A child's status file; ``caught_up`` is false when it is stale or the child died."""
        status = read_json(self.data_dir / name)
        if status is None:
            return None
        age = (datetime.now(UTC) - datetime.fromisoformat(status["written_at"])).total_seconds()
        if age > CHILD_STATUS_MAX_AGE_S or process is None or process.poll() is not None:
            status["caught_up"] = False
        return status

    def caught_up(self) -> bool:
        """Every source polled to the end and, on the embedded broker, everything stored."""
        return bool(self.ingest_status().get("caught_up"))

    def tick(self) -> None:
        """Once a second: refresh ``grid.area`` when due, write the status file and run
        hooks (the demo waits here)."""
        if self.area is not None:
            self.area.maybe_refresh(self.counters.sunk_rows)
        self.write_status()
        for hook in list(self.on_tick_hooks):
            hook(self)

    def table_counts(self) -> dict[str, int]:
        """Rows per contract table (FINAL for the resident and area tables).

        Counted at most every few seconds, in a reader session of the store's
        own, so that the sink never waits for them. While ClickHouse does not
        answer, the last counts stand (the rest of the status matters most then).
        """
        now = time.monotonic()
        cached = self._counts
        if cached is not None and now - cached[0] < TABLE_COUNT_INTERVAL_S:
            return dict(cached[1])
        counts: dict[str, int] = {}
        db = self.settings.clickhouse.database
        try:
            for table in CONTRACT_TABLES:
                final = " FINAL" if table in ("resident", "area") else ""
                rows = self.reader.query(f"SELECT count() FROM {db}.{table}{final}").result_rows
                counts[table] = int(rows[0][0])
        except Exception as exc:
            self.store_error = f"ClickHouse does not answer: {str(exc)[:300]}"
            log.warning("table counts not read", reason=self.store_error)
            self._counts = (now, cached[1] if cached is not None else {})
            return dict(self._counts[1])
        self.store_error = ""
        self._counts = (now, counts)
        return counts

    def lag(self, *children: dict[str, Any]) -> dict[str, dict[str, int]]:
        """Consumer lag of this process and of its children, per topic/partition."""
        lag = consumer_lag(self.app) if self.app is not None else {}
        out: dict[str, dict[str, int]] = {}
        for child in children:
            out.update(child.get("lag", {}))
        return {**out, **lag}

    def status(self) -> dict[str, Any]:
        """What ``gridhub status`` shows."""
        ingest = self.ingest_status()
        merge = self.merge_status()
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
            "sources": ingest.get("sources", {}),
            "owned": ingest.get("owned", []),
            "stages": {
                "routed": ingest.get("routed", self.counters.routed),
                "dead_letters": ingest.get("dead_letters", self.counters.dead_letters),
                "merged": merge.get("merged", 0),
                "sunk_rows": self.counters.sunk_rows,
                "sink_retries": self.counters.sink_retries,
                "sink_failing": self.counters.sink_failing,
                "last_sink_at": self.counters.last_sink_at.isoformat()
                if self.counters.last_sink_at
                else None,
                "area_grids_written": self.area.grids_written if self.area else 0,
            },
            "health": self.health.address if self.health else None,
            "store_http": self.store_server.address if self.store_server else None,
            "registry": self.registry.url if self.registry else None,
            "lag": self.lag(ingest, merge),
            "tables": self.table_counts(),
            **({"store_error": self.store_error} if self.store_error else {}),
            "caught_up": bool(ingest.get("caught_up")),
        }

    def write_status(self, *, final: bool = False) -> None:
        """Write ``data_dir/status.json`` atomically."""
        try:
            status = self.status()
        except Exception as exc:  # status must never take the hub down
            log.warning("status not written", error=str(exc))
            return
        self.last_status = status
        if self.overview is not None:
            self.overview.sample(status)
        if final:
            status["stopped_at"] = datetime.now(UTC).isoformat()
        path = self.data_dir / STATUS_FILE
        write_json_atomic(path, status, indent=1)


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """The last status a hub wrote in ``data_dir``, or None."""
    return read_json(data_dir / STATUS_FILE)
