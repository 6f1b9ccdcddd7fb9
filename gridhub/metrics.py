"""``GET /metrics``: the hub in the Prometheus text format.

Two kinds of figures. What the sink measures as it happens (insert latency,
rows per insert, end-to-end freshness) is observed into histograms in the
hub's process (:class:`SinkMetrics`). Everything else already exists in the
hub's status snapshot, written every second from all its processes (sources,
stages, lag from fetch high watermarks), and is read from there at each
scrape (:class:`StatusCollector`), so the child processes need no metrics
endpoint of their own and a scrape costs no extra work on the hot path.

Names follow Prometheus conventions: a ``gridhub_`` prefix, base units
(seconds, not milliseconds), ``_total`` on counters, ``_seconds`` on
durations, ``_timestamp_seconds`` on points in time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

FRESHNESS_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 21600, 86400)
"""Source event time to queryable: seconds when flowing, hours or a day when a source
publishes late (the hotline's tickets can arrive minutes after their time)."""
BATCH_ROWS_BUCKETS = (1, 10, 100, 500, 1000, 5000, 10000, 20000, 50000, 100000)
INSERT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STAGES = ("routed", "merged", "sunk_rows")
"""Status counters of the stages, exposed as ``gridhub_stage_records_total{stage}``."""

Status = Callable[[], dict[str, Any] | None]
DeadLetterCounts = Callable[[], list[tuple[str, str, str, int]]]
"""(source, entity, reason, count) of the stored dead letters."""


class SinkMetrics:
    """What the sink observes as it inserts, in ``registry``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        on_fresh: Callable[[list[float]], None] | None = None,
    ) -> None:
        self.on_fresh = on_fresh
        """Also told each flush's freshness (the dashboard's last hour)."""
        self.rows = Counter(
            "gridhub_sink_rows",
            "Rows inserted into ClickHouse, by table.",
            ["table"],
            registry=registry,
        )
        self.insert_seconds = Histogram(
            "gridhub_sink_insert_duration_seconds",
            "Time one insert into ClickHouse took, by table.",
            ["table"],
            buckets=INSERT_BUCKETS,
            registry=registry,
        )
        self.batch_rows = Histogram(
            "gridhub_sink_batch_rows",
            "Rows stored by one flush of the sink (all tables).",
            buckets=BATCH_ROWS_BUCKETS,
            registry=registry,
        )
        self.freshness = Histogram(
            "gridhub_freshness_seconds",
            "End-to-end freshness: from a source record's own time to queryable in ClickHouse.",
            buckets=FRESHNESS_BUCKETS,
            registry=registry,
        )

    def inserted(self, table: str, rows: int, seconds: float) -> None:
        """One insert of ``rows`` into ``table`` took ``seconds``."""
        self.rows.labels(table).inc(rows)
        self.insert_seconds.labels(table).observe(seconds)

    def flushed(self, rows: int, freshness: Iterable[float]) -> None:
        """One flush stored ``rows``; ``freshness`` of each new source record among them."""
        if rows:
            self.batch_rows.observe(rows)
        fresh = [max(0.0, seconds) for seconds in freshness]
        for seconds in fresh:
            self.freshness.observe(seconds)
        if self.on_fresh is not None and fresh:
            self.on_fresh(fresh)


class StatusCollector(Collector):
    """Families read from the hub's latest status snapshot at each scrape."""

    def __init__(self, status: Status, dead_letters: DeadLetterCounts | None = None) -> None:
        self.status = status
        self.dead_letters = dead_letters

    def collect(self) -> Iterator[Metric]:
        status = self.status() or {}
        yield from _source_families(status.get("sources", {}))
        stages = status.get("stages", {})
        records = CounterMetricFamily(
            "gridhub_stage_records",
            "Records (rows for the sink) each stage has handled since the hub started.",
            labels=["stage"],
        )
        for stage in STAGES:
            records.add_metric([stage.removesuffix("_rows")], float(stages.get(stage, 0)))
        yield records
        retries = CounterMetricFamily(
            "gridhub_sink_retries", "Inserts ClickHouse refused or did not answer, retried."
        )
        retries.add_metric([], float(stages.get("sink_retries", 0)))
        yield retries
        lag = GaugeMetricFamily(
            "gridhub_consumer_lag_messages",
            "Messages not yet processed, per topic and partition "
            "(fetch high watermark minus committed offset).",
            labels=["topic", "partition"],
        )
        for topic, partitions in sorted(status.get("lag", {}).items()):
            if topic.endswith("__leader"):
                continue  # Faust's assignor bookkeeping, not data
            for partition, behind in sorted(partitions.items()):
                lag.add_metric([topic, str(partition)], float(behind))
        yield lag
        tables = GaugeMetricFamily(
            "gridhub_table_rows",
            "Rows in each ClickHouse table (FINAL where keyed).",
            labels=["table"],
        )
        for table, count in sorted(status.get("tables", {}).items()):
            tables.add_metric([table], float(count))
        yield tables
        up = GaugeMetricFamily("gridhub_clickhouse_up", "1 when ClickHouse answered last time.")
        up.add_metric([], 0.0 if status.get("store_error") or "tables" not in status else 1.0)
        yield up
        if self.dead_letters is not None:
            yield _dead_letter_family(self.dead_letters())


def _source_families(sources: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "gridhub_source_up", "1 when the source's last poll worked.", labels=["source"]
    )
    pulled = CounterMetricFamily(
        "gridhub_source_records_pulled", "Records published from each source.", labels=["source"]
    )
    errors = CounterMetricFamily(
        "gridhub_source_errors", "Failed polls, by source and kind.", labels=["source", "kind"]
    )
    last = GaugeMetricFamily(
        "gridhub_source_last_success_timestamp_seconds",
        "When the source's last poll worked (Unix time).",
        labels=["source"],
    )
    cursor = GaugeMetricFamily(
        "gridhub_source_cursor_info",
        "Where each source and entity resumes from (the value is always 1).",
        labels=["source", "entity", "position"],
    )
    for name, source in sorted(sources.items()):
        up.add_metric([name], 1.0 if source.get("healthy") else 0.0)
        pulled.add_metric([name], float(source.get("records", 0)))
        for kind, count in sorted((source.get("errors_by_kind") or {}).items()):
            errors.add_metric([name, kind], float(count))
        if source.get("last_success"):
            moment = datetime.fromisoformat(source["last_success"]).timestamp()
            last.add_metric([name], moment)
        for entity, position in sorted((source.get("positions") or {}).items()):
            text = position if isinstance(position, str) else _position_text(position)
            cursor.add_metric([name, entity, text], 1.0)
    yield from (up, pulled, errors, last, cursor)


def _position_text(position: Any) -> str:
    if isinstance(position, dict):
        return " ".join(f"{key}={value}" for key, value in sorted(position.items()))
    return str(position)


def _dead_letter_family(rows: list[tuple[str, str, str, int]]) -> Metric:
    family = GaugeMetricFamily(
        "gridhub_dead_letters",
        "Dead letters stored, by source, entity and reason (the reason's first clause).",
        labels=["source", "entity", "reason"],
    )
    for source, entity, reason, count in rows:
        family.add_metric([source, entity, reason], float(count))
    return family


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format."""
    return bytes(generate_latest(registry))
