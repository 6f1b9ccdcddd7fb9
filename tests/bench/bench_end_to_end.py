"""End-to-end benchmark of the demo path on the embedded default (``make bench``).

Not collected by pytest. Runs the hub in this process against a county of
``--residents`` (default 50,000) people served by the MariaDB simulator:

1. **Backlog**: every ``syrk``/``jq`` row is in the database before the hub
   starts; records/s end to end = source records / (first source read ->
   last row queryable in ClickHouse).
2. **Live**: then ``--live-rows`` rows are updated with ``gxsj = now`` at
   ``--live-rate`` rows/s; freshness = source event time -> row queryable,
   reported as p50/p99 (``gxsj`` has second precision, so +-1 s).
3. **Ceiling**: the rows the hub stored are inserted again, from Python lists,
   into copies of the same tables in the same engine; the ratio of (1) to this
   rate says how much of the engine's insert speed the pipeline keeps.

A shared machine's speed drifts from minute to minute (the same build has
measured 5,000 and 7,500 records/s half an hour apart), so ``--repeat N``
(default 3) runs the whole measurement N times, each in a fresh process with a
fresh hub, database and store, and reports every run and the median.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from gridhub.simulators.county import generate_county
from gridhub.simulators.police_db import PoliceDatabase
from gridhub.streams.normalize import CHINA_TZ
from rich.console import Console
from rich.table import Table

from gridhub.config import load_settings
from gridhub.demo import write_config
from gridhub.hub import Hub
from gridhub.logs import configure_logging
from gridhub.store.client import close_embedded, open_client


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(residents: int, live_rows: int, live_rate: float, workdir: Path) -> dict[str, Any]:
    console = Console()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    started = time.monotonic()
    county = generate_county(residents, seed=3)
    county.write_reference(workdir / "reference")
    source_records = len(county.syrk_rows) + len(county.jq_rows)
    console.print(
        f"county of {residents} residents: {len(county.syrk_rows)} syrk + "
        f"{len(county.jq_rows)} jq rows (generated in {time.monotonic() - started:.1f} s)"
    )
    result: dict[str, Any] = {"residents": residents, "source_records": source_records}
    with PoliceDatabase() as police:
        police.load(county.syrk_rows, county.jq_rows)
        config = write_config(workdir, police.dsn)
        hub = Hub(load_settings(config))
        hub.prepare()
        phase: dict[str, Any] = {"name": "backlog"}
        live_done = threading.Event()

        def feed_live() -> None:
            rows = county.syrk_rows[:live_rows]
            interval = 1.0 / live_rate
            for index in range(0, len(rows), 10):
                now = datetime.now(CHINA_TZ).replace(microsecond=0, tzinfo=None)
                chunk = [
                    dict(row, gxsj=now, lxdh=f"139{index:08d}"[:11])
                    for row in rows[index : index + 10]
                ]
                police.upsert_syrk(chunk)
                time.sleep(interval * len(chunk))
            live_done.set()

        def settled(h: Hub) -> bool:
            """Every source read and acknowledged, and nothing left on any topic (the phone
            stage acknowledges a part before the copies it sent are stored)."""
            lag = (h.last_status or {}).get("lag", {})
            return h.caught_up() and not any(n for t in lag.values() for n in t.values())

        def watch(h: Hub) -> None:
            if phase["name"] == "backlog" and settled(h):
                police = h.ingest_status()["sources"]["police"]
                first = datetime.fromisoformat(police["first_poll_at"])
                last = h.counters.last_sink_at
                assert last is not None
                phase["backlog_seconds"] = (last - first).total_seconds()
                phase["backlog_rows"] = h.counters.sunk_rows
                h.sink.freshness.clear()
                phase["name"] = "live"
                threading.Thread(target=feed_live, daemon=True).start()
            elif phase["name"] == "live" and live_done.is_set() and settled(h):
                phase.setdefault("settle", time.monotonic())
                if time.monotonic() - phase["settle"] > 2.0:
                    phase["freshness"] = list(h.sink.freshness)
                    phase["name"] = "done"
                    h.request_stop()

        hub.on_tick_hooks.append(watch)
        hub.run()
    seconds = phase["backlog_seconds"]
    result["end_to_end_records_per_s"] = source_records / seconds
    result["backlog_seconds"] = seconds
    freshness = phase.get("freshness", [])
    result["freshness_samples"] = len(freshness)
    result["freshness_p50_s"] = percentile(freshness, 0.5) if freshness else float("nan")
    result["freshness_p99_s"] = percentile(freshness, 0.99) if freshness else float("nan")
    result["ceiling_records_per_s"] = ceiling(workdir / "gridhub.toml", source_records)
    result["ratio"] = result["end_to_end_records_per_s"] / result["ceiling_records_per_s"]
    report(console, result)
    return result


def ceiling(config: Path, source_records: int) -> float:
    """Records/s when the same stored rows are simply inserted into the same engine."""
    settings = load_settings(config)
    client = open_client(settings)
    try:
        tables: dict[str, tuple[list[str], list[list[Any]]]] = {}
        for table in ("resident", "events", "dead_letters", "unlinked"):
            result = client.query(f"SELECT * FROM grid.{table}")
            tables[table] = (list(result.column_names), [list(r) for r in result.result_rows])
            client.command(f"DROP TABLE IF EXISTS grid.ceiling_{table}")
            client.command(f"CREATE TABLE grid.ceiling_{table} AS grid.{table}")
        started = time.perf_counter()
        for table, (columns, rows) in tables.items():
            for offset in range(0, len(rows), 20_000):  # the sink's batch size
                client.insert(
                    f"grid.ceiling_{table}", rows[offset : offset + 20_000], column_names=columns
                )
        seconds = time.perf_counter() - started
        for table in tables:
            client.command(f"DROP TABLE grid.ceiling_{table}")
    finally:
        close_embedded()
    return source_records / seconds


def report(console: Console, result: dict[str, Any]) -> None:
    table = Table("measure", "value", title="gridhub end-to-end benchmark (embedded default)")
    table.add_row(
        "residents / source records", f"{result['residents']} / {result['source_records']}"
    )
    table.add_row("backlog drained in", f"{result['backlog_seconds']:.1f} s")
    table.add_row("end to end", f"{result['end_to_end_records_per_s']:,.0f} records/s")
    table.add_row(
        "ceiling (plain inserts, same engine)", f"{result['ceiling_records_per_s']:,.0f} records/s"
    )
    table.add_row("ratio end-to-end / ceiling", f"{result['ratio']:.2f}")
    table.add_row(
        f"freshness p50 / p99 ({result['freshness_samples']} live rows)",
        f"{result['freshness_p50_s']:.2f} s / {result['freshness_p99_s']:.2f} s",
    )
    table.add_row("target", ">= 5,000 records/s end to end")
    console.print(table)


MEASURES = (
    ("end to end (records/s)", "end_to_end_records_per_s", "{:,.0f}"),
    ("backlog drained (s)", "backlog_seconds", "{:.1f}"),
    ("ceiling (records/s)", "ceiling_records_per_s", "{:,.0f}"),
    ("ratio", "ratio", "{:.2f}"),
    ("freshness p50 (s)", "freshness_p50_s", "{:.2f}"),
    ("freshness p99 (s)", "freshness_p99_s", "{:.2f}"),
)


def repeated(args: argparse.Namespace, repeat: int) -> list[dict[str, Any]]:
    """Each run in a process of its own (one chdb store per process), one after another."""
    results = []
    for index in range(repeat):
        out = args.dir.resolve() / f"run-{index}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            __file__,
            "--repeat=1",
            f"--residents={args.residents}",
            f"--live-rows={args.live_rows}",
            f"--live-rate={args.live_rate}",
            f"--dir={args.dir.resolve() / f'run-{index}'}",
            f"--json-out={out}",
        ]
        subprocess.run(command, check=True)
        results.append(json.loads(out.read_text("utf-8")))
    return results


def summary(console: Console, results: list[dict[str, Any]]) -> None:
    runs = [f"run {n + 1}" for n in range(len(results))]
    table = Table("measure", *runs, "median", title=f"{len(results)} runs, median")
    for label, key, fmt in MEASURES:
        values = [r[key] for r in results]
        table.add_row(
            label, *(fmt.format(v) for v in values), fmt.format(statistics.median(values))
        )
    table.add_row("target", *[""] * len(results), ">= 5,000 records/s end to end")
    console.print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=50_000)
    parser.add_argument("--live-rows", type=int, default=3_000)
    parser.add_argument("--live-rate", type=float, default=500.0, help="rows/s")
    parser.add_argument("--dir", type=Path, default=Path(".bench"))
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median is reported")
    parser.add_argument("--json-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeat > 1:
        summary(Console(), repeated(args, args.repeat))
        return 0
    configure_logging()
    result = run(args.residents, args.live_rows, args.live_rate, args.dir.resolve())
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(result), "utf-8")
    return 0 if result["end_to_end_records_per_s"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
