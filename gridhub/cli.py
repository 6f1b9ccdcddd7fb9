"""``gridhub``: the commands an operator expects (``spec/operations.md``)."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.table import Table

from gridhub.config import GridhubSettings, load_settings
from gridhub.errors import GridhubError
from gridhub.logs import configure_logging

app = typer.Typer(
    name="gridhub",
    help="gridhub: one record per resident and per unified grid (多网融合、多格合一).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False)  # colour only where it says something
err = Console(stderr=True, highlight=False)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="gridhub.toml (default ./gridhub.toml)."),
]


def _settings(config: Path | None) -> GridhubSettings:
    try:
        settings = load_settings(config)
    except GridhubError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    configure_logging(json_lines=settings.hub.log_format == "json")
    return settings


@app.command()
def run(config: ConfigOption = None) -> None:
    """Run connectors, stream workers and the ClickHouse sink until stopped (SIGTERM)."""
    from gridhub.hub import Hub

    settings = _settings(config)
    try:
        hub = Hub(settings)
        hub.prepare()
    except GridhubError as exc:
        err.print(f"[red]cannot start:[/red] {exc}")
        raise typer.Exit(1) from None
    err.print(
        f"gridhub running: data in {settings.data_dir}, sources: "
        f"{', '.join(settings.sources.configured()) or 'none configured'}"
    )
    hub.run()


@app.command()
def demo(
    residents: Annotated[int, typer.Option(help="Size of the synthetic county.")] = 2000,
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its files (wiped first).")
    ] = Path("gridhub-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic county.")] = 7,
) -> None:
    """Everything on this machine: simulators, embedded broker and store, a synthetic county."""
    from gridhub.demo import run_demo

    configure_logging()
    try:
        run_demo(directory.resolve(), residents=residents, seed=seed, console=console)
    except GridhubError as exc:
        err.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from None


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="A read-only SQL statement.")],
    config: ConfigOption = None,
    output: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
) -> None:
    """Run a read-only query against the configured ClickHouse and print the result."""
    from gridhub.store.client import open_client

    if output not in ("table", "json", "csv"):
        err.print("--format must be table, json or csv")
        raise typer.Exit(2)
    settings = _settings(config)
    served = _running_store(settings)
    if served is not None:
        _query_over_http(served, sql, output)
        return
    try:
        client = open_client(settings)
    except GridhubError as exc:
        err.print(f"[red]cannot open the store:[/red] {exc}")
        raise typer.Exit(1) from None
    readonly = {"readonly": 1}
    try:
        if output == "json":
            text = client.raw_query(sql, settings=readonly, fmt="JSON").decode("utf-8")
            sys.stdout.write(text)
            return
        if output == "csv":
            text = client.raw_query(sql, settings=readonly, fmt="CSVWithNames").decode("utf-8")
            sys.stdout.write(text)
            return
        result = client.query(sql, settings=readonly)
    except Exception as exc:
        err.print(f"[red]query failed:[/red] {str(exc).strip().splitlines()[0][:500]}")
        raise typer.Exit(1) from None
    table = Table(*result.column_names, show_lines=False)
    for row in result.result_rows:
        table.add_row(*(_cell(value) for value in row))
    console.print(table)
    console.print(f"{len(result.result_rows)} rows")


def _running_store(settings: GridhubSettings) -> str | None:
    """Address where a running hub serves its embedded store, if one does."""
    from gridhub.hub import read_status

    if not settings.clickhouse.embedded:
        return None
    snapshot = read_status(settings.data_dir)
    if not snapshot or not _hub_running(snapshot):
        return None
    address = snapshot.get("store_http")
    return str(address) if address else None


def _query_over_http(address: str, sql: str, output: str) -> None:
    """Ask the running hub (chdb admits one process; the hub holds the store)."""
    import httpx

    fmt = {"table": "JSONCompact", "json": "JSON", "csv": "CSVWithNames"}[output]
    try:
        response = httpx.post(
            f"http://{address}/", params={"default_format": fmt}, content=sql, timeout=300
        )
    except httpx.HTTPError as exc:
        err.print(f"[red]the running hub did not answer at {address}:[/red] {exc}")
        raise typer.Exit(1) from None
    if response.status_code != 200:
        err.print(f"[red]query failed:[/red] {response.text.strip().splitlines()[0][:500]}")
        raise typer.Exit(1)
    if output != "table":
        sys.stdout.write(response.text)
        return
    body = response.json()
    table = Table(*(column["name"] for column in body["meta"]))
    for row in body["data"]:
        table.add_row(*(_cell(value) for value in row))
    console.print(table)
    console.print(f"{len(body['data'])} rows")


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


@app.command()
def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Refresh the screen until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between refreshes with --watch.", min=0.2)
    ] = 2.0,
) -> None:
    """One screen: broker, sources, lag per topic (from fetch high watermarks), table rows."""
    settings = _settings(config)
    if as_json:
        sys.stdout.write(json.dumps(_status_snapshot(settings), ensure_ascii=False) + "\n")
        return
    if not watch:
        console.print(_status_screen(_status_snapshot(settings)))
        return
    from rich.live import Live

    with Live(_status_screen(_status_snapshot(settings)), console=console) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(_status_screen(_status_snapshot(settings)))
        except KeyboardInterrupt:
            return


def _status_snapshot(settings: GridhubSettings) -> dict[str, Any]:
    """The hub's last status, with whether it runs and whether its broker answers."""
    from gridhub.hub import read_status
    from gridhub.runtime.broker import broker_answers

    snapshot = read_status(settings.data_dir)
    if snapshot is None:
        err.print(f"no hub has run with data_dir {settings.data_dir} yet")
        raise typer.Exit(1)
    running = _hub_running(snapshot)
    bootstrap = snapshot["broker"]["bootstrap"]
    broker_up = (
        broker_answers(bootstrap) if running or not snapshot["broker"]["embedded"] else False
    )
    return {**snapshot, "running": running, "broker_up": broker_up}


def _status_screen(snapshot: dict[str, Any]) -> Group:
    """The status as rich renderables; colour only where it says something is wrong."""
    running = snapshot["running"]
    colour = "green" if running else "yellow"
    head = (
        f"hub [{colour}]{'running' if running else 'not running'}[/{colour}] "
        f"(status written {snapshot['written_at']})  broker {snapshot['broker']['bootstrap']}: "
        + ("[green]up[/green]" if snapshot["broker_up"] else "[red]down[/red]")
    )
    if snapshot.get("health"):
        head += f"\ndashboard http://{snapshot['health']}/  (/health, /metrics)"
    if snapshot.get("store_error"):
        head += f"\n[red]{snapshot['store_error']}[/red]"
    sources = Table("source", "health", "records", "errors", "last success", "position")
    for name, source in snapshot["sources"].items():
        health = "[green]ok[/green]" if source["healthy"] else f"[red]{source['reason']}[/red]"
        sources.add_row(
            name,
            health,
            str(source["records"]),
            str(source["errors"]),
            source["last_success"] or "never",
            json.dumps(source["positions"], ensure_ascii=False),
        )
    lag = Table("topic", "partition", "lag")
    for topic, partitions in snapshot["lag"].items():
        for partition, value in partitions.items():
            lag.add_row(topic, partition, f"[red]{value}[/red]" if value else "0")
    tables = Table("table", "rows")
    for name, count in snapshot["tables"].items():
        tables.add_row(name, str(count))
    stages = snapshot["stages"]
    foot = (
        f"records routed {stages['routed']}, merged {stages['merged']}, "
        f"rows stored {stages['sunk_rows']}, dead letters {stages['dead_letters']}"
    )
    return Group(head, sources, lag, tables, foot)


@app.command()
def replay(
    source: Annotated[str, typer.Argument(help="party, police, civil or hotline")],
    since: Annotated[
        str,
        typer.Option(
            "--since",
            help="ISO 8601 time or date; without an offset it is China time (+08:00).",
        ),
    ],
    config: ConfigOption = None,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for the running hub to apply it.")
    ] = 120.0,
) -> None:
    """Pull a source again from a point in time; only genuinely new data changes the result.

    While a hub runs (or on a deployment's broker) the process that pulls the source
    stops it after its batch in flight, moves its checkpoints back and starts it again;
    the command waits until it did. An embedded hub that is stopped has its checkpoint
    files moved back, and the next ``gridhub run`` pulls again from there.
    """
    from gridhub.hub import read_status
    from gridhub.ingest import PULLED
    from gridhub.ingest import replay as replay_stopped
    from gridhub.streams.normalize import CHINA_TZ

    settings = _settings(config)
    if source not in PULLED:
        err.print(f"[red]unknown source {source!r}[/red]: one of {', '.join(sorted(PULLED))}")
        raise typer.Exit(2)
    if getattr(settings.sources, source) is None:
        err.print(f"[red]source {source} is not configured[/red] in [sources.{source}]")
        raise typer.Exit(2)
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        err.print(f"[red]--since {since!r} is not an ISO 8601 time or date[/red]")
        raise typer.Exit(2) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA_TZ)
    snapshot = read_status(settings.data_dir)
    running = _hub_running(snapshot)
    if settings.kafka.embedded and not running:
        before = replay_stopped(settings, source, moment)
        for entity, position in before.items():
            low = (position or {}).get("low") or "the beginning"
            console.print(f"{source}.{entity}: from {low} back to {moment.isoformat()}")
        console.print("the next `gridhub run` pulls it again from there")
        return
    bootstrap = (
        str(snapshot["broker"]["bootstrap"])
        if settings.kafka.embedded and snapshot
        else settings.kafka.bootstrap
    )
    _replay_running(settings, bootstrap, source, moment, wait)


def _replay_running(
    settings: GridhubSettings, bootstrap: str, source: str, moment: datetime, wait: float
) -> None:
    """Ask the process that owns ``source`` to replay it, and report what it did."""
    from gridhub.replay_requests import send_request, wait_for_result
    from gridhub.topics import Topics

    topics = Topics(settings.kafka.topic_prefix)
    try:
        request = send_request(bootstrap, topics, source, moment)
    except GridhubError as exc:
        err.print(f"[red]replay not requested:[/red] {exc}")
        raise typer.Exit(1) from None
    err.print(f"asked the process that pulls {source} to pull it again from {moment.isoformat()}")
    result = wait_for_result(bootstrap, topics, request, wait)
    if result is None:
        if settings.kafka.embedded:
            err.print(
                f"[red]the running hub did not apply the replay within {wait:.0f} s[/red]; "
                f"see {settings.data_dir / 'logs'} and try again"
            )
        else:
            err.print(
                f"[yellow]no running process applied the replay within {wait:.0f} s[/yellow]: "
                f"the request stays on {topics.connectors}, and the process that next "
                f"pulls {source} applies it"
            )
        raise typer.Exit(1)
    if not result.applied:
        err.print(f"[red]the hub did not replay {source}:[/red] {result.message}")
        raise typer.Exit(1)
    for entity, low in result.before.items():
        console.print(
            f"{source}.{entity}: from {low or 'the beginning'} back to {moment.isoformat()}"
        )
    console.print(f"applied by {result.owner}: {source} is being pulled again from there")


def _hub_running(snapshot: dict[str, Any] | None) -> bool:
    """Whether the status file was written by a hub that is still running."""
    return bool(snapshot and "stopped_at" not in snapshot and _alive(int(snapshot["pid"])))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


reference_app = typer.Typer(help="The unified grid map ([reference] dir).", no_args_is_help=True)
app.add_typer(reference_app, name="reference")


@reference_app.command("reload")
def reference_reload(config: ConfigOption = None) -> None:
    """Load the grid map again and re-place the residents and records it moves.

    The folder is checked first; a running hub then stores the new map, re-places
    the records without a resident, and has every merge partition re-place its
    residents (only those whose grid changes get a new row; grid.area follows).
    A stopped hub uses the new map when it next starts, and re-places then.
    """
    import httpx

    from gridhub.health import RELOAD_PATH
    from gridhub.hub import load_reference_dir, read_status
    from gridhub.reference import ReferenceDataError

    settings = _settings(config)
    try:
        reference = load_reference_dir(settings)
    except (GridhubError, ReferenceDataError) as exc:
        err.print(f"[red]the grid map does not load:[/red] {exc}")
        raise typer.Exit(1) from None
    snapshot = read_status(settings.data_dir)
    if not _hub_running(snapshot) or not snapshot or not snapshot.get("health"):
        console.print(
            f"grid map checked: {len(reference.grids)} grids, {len(reference.addresses)} "
            "addresses. The hub is not running: it uses this map, and re-places what it "
            "moves, when it next starts."
        )
        return
    try:
        answer = httpx.post(f"http://{snapshot['health']}{RELOAD_PATH}", timeout=300)
    except httpx.HTTPError as exc:
        err.print(f"[red]the running hub did not answer:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    body = answer.json()
    if answer.status_code != 200:
        err.print(f"[red]the hub refused the reload:[/red] {body.get('error')}")
        raise typer.Exit(1)
    if not body["changed"]:
        console.print("the grid map is the one in use: nothing to re-place")
        return
    console.print(
        f"grid map reloaded: {body['grids']} grids; {body['unlinked_re_placed']} records "
        f"without a resident re-placed; {body['partitions_notified']} merge partitions "
        "re-place their residents now (grid.area follows within seconds)"
    )


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
