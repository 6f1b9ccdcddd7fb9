"""``gridhub demo``: the whole hub on this machine, with a synthetic county.

Generates a county, serves its data from the simulators (the police tables
in the local MariaDB, the civil-affairs table in the local PostgreSQL, the
party-building and 12345 APIs on loopback), writes a ``gridhub.toml`` pointing at them,
runs the
hub on the embedded broker and store until it has caught up, then prints a
summary and three example queries with their answers. The simulated
databases are dropped at the end; the store stays in ``<dir>/data`` for
``gridhub query``.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gridhub.config import load_settings
from gridhub.errors import EmbeddedRuntimeError
from gridhub.simulators.county import County, generate_county

EXAMPLE_QUERIES = (
    (
        "Residents per community (居民数 by 社区)",
        "SELECT community_code, count() AS residents, "
        "countIf(population_type = '流动') AS floating, "
        "countIf(notEmpty(assistance)) AS assisted, "
        "countIf(is_party_member) AS party_members FROM grid.resident FINAL "
        "GROUP BY community_code ORDER BY residents DESC LIMIT 5",
    ),
    (
        "The busiest unified grids (grid.area, one row per grid)",
        "SELECT grid_name, residents, floating_population AS floating, party_members, "
        "assistance_recipients AS assisted, elderly_80_plus AS age_80_plus, "
        "hotline_tickets_30d AS tickets_30d, incidents_30d, volunteer_hours_30d AS volunteer_h "
        "FROM grid.area FINAL ORDER BY residents DESC LIMIT 5",
    ),
    (
        "How residents were placed on the unified grid",
        "SELECT placement, count() AS residents FROM grid.resident FINAL "
        "GROUP BY placement ORDER BY residents DESC",
    ),
    (
        "Dead letters by reason (records the hub could not use)",
        "SELECT source, entity, reason, count() AS records FROM grid.dead_letters FINAL "
        "GROUP BY source, entity, reason ORDER BY records DESC",
    ),
)


DEMO_PARTY_TOKEN = "gridhub-demo-party-token"
DEMO_HOTLINE_KEY = "gridhub-demo-county"
DEMO_HOTLINE_SECRET = "gridhub-demo-hotline-secret"


def _answers(connect: Callable[[], Any]) -> str | None:
    """None when ``connect()`` opens a connection (closed again), else why not."""
    try:
        connect().close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def police_database_available() -> str | None:
    """None when the local MariaDB answers, else why not."""
    import pymysql

    return _answers(
        lambda: pymysql.connect(
            host="127.0.0.1", port=3306, user="root", password="", connect_timeout=3
        )
    )


def civil_database_available() -> str | None:
    """None when the local PostgreSQL answers, else why not."""
    import psycopg

    return _answers(
        lambda: psycopg.connect(
            host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3
        )
    )


def write_config(
    directory: Path,
    police_dsn: str | None,
    civil_dsn: str | None = None,
    party_url: str | None = None,
    hotline_url: str | None = None,
    roster_dir: Path | None = None,
) -> Path:
    """The demo's ``gridhub.toml``."""
    lines = [
        "# written by `gridhub demo`",
        "[hub]",
        'data_dir = "data"',
        'listen = "127.0.0.1:0"  # any free port: several demos may run at once',
        "[kafka]",
        'bootstrap = "embedded"',
        "[clickhouse]",
        'url = "embedded"',
        'serve = "127.0.0.1:0"  # any free port; `gridhub status` shows it',
        "[registry]",
        'serve = "127.0.0.1:0"  # any free port; data/status.json names it',
        "[reference]",
        'dir = "reference"',
    ]
    if police_dsn:
        lines += ["[sources.police]", f'dsn = "{police_dsn}"', "poll_seconds = 1.0"]
    if civil_dsn:
        lines += ["[sources.civil]", f'dsn = "{civil_dsn}"', "poll_seconds = 1.0"]
        if roster_dir is not None:
            lines.append(f'roster_dir = "{roster_dir}"')
    if party_url:
        lines += [
            "[sources.party]",
            f'base_url = "{party_url}"',
            f'token = "{DEMO_PARTY_TOKEN}"  # the simulator\'s; a deployment writes env:VAR',
            "poll_seconds = 1.0",
        ]
    if hotline_url:
        lines += [
            "[sources.hotline]",
            f'base_url = "{hotline_url}"',
            f'app_key = "{DEMO_HOTLINE_KEY}"',
            f'app_secret = "{DEMO_HOTLINE_SECRET}"  # the simulator\'s; a deployment: env:VAR',
            "poll_seconds = 1.0",
            "backfill_days = 90  # the synthetic county's tickets go back two months",
        ]
    path = directory / "gridhub.toml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


@dataclass
class DemoRun:
    """What one demo run measured."""

    county: County
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    answers: list[tuple[str, list[str], list[tuple[Any, ...]]]] = field(default_factory=list)


def run_hub_until_caught_up(config: Path, *, timeout: float = 600.0) -> dict[str, Any]:
    """Run the hub from ``config`` until it has caught up; returns its final status."""
    from gridhub.hub import Hub

    settings = load_settings(config)
    hub = Hub(settings)
    hub.prepare()
    started = time.monotonic()
    state: dict[str, Any] = {"since": None}

    def stop_when_done(h: Hub) -> None:
        if h.caught_up():
            state["since"] = state["since"] or time.monotonic()
            if time.monotonic() - state["since"] >= 1.0:  # one quiet poll more
                state["status"] = h.status()
                h.request_stop()
        else:
            state["since"] = None
        if time.monotonic() - started > timeout:
            state["timed_out"] = True
            h.request_stop()

    hub.on_tick_hooks.append(stop_when_done)
    hub.run()
    if state.get("timed_out"):
        raise EmbeddedRuntimeError(f"the hub did not catch up within {timeout:.0f} s")
    result: dict[str, Any] = state.get("status", {})
    return result


def run_demo(directory: Path, *, residents: int, seed: int, console: Console) -> DemoRun:
    """Generate, serve, run, report."""
    from gridhub.simulators.civil_db import CivilDatabase
    from gridhub.simulators.hotline_api import HotlineApiServer
    from gridhub.simulators.party_api import PartyApiServer
    from gridhub.simulators.police_db import PoliceDatabase

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    console.print(f"[bold]gridhub demo[/bold]: a synthetic county of {residents} residents")
    county = generate_county(residents, seed=seed)
    county.write_reference(directory / "reference")
    run = DemoRun(county)
    problem = police_database_available()
    if problem:
        console.print(
            "[yellow]left out: the simulated public-security system[/yellow] — MariaDB at "
            f"127.0.0.1:3306 did not answer ({problem}). Start MariaDB, or set "
            "[sources.police] dsn in a gridhub.toml to a reachable MySQL/MariaDB and use "
            "`gridhub run`."
        )
        write_config(directory, None)
        return run
    console.print(
        "[dim]not pulled yet: party activities (they wait for grid.area; see README)[/dim]"
    )
    with contextlib.ExitStack() as stack:
        police = stack.enter_context(PoliceDatabase())
        police.load(county.syrk_rows, county.jq_rows)
        console.print(
            f"public-security simulator: MariaDB database {police.name} with "
            f"{len(county.syrk_rows)} syrk and {len(county.jq_rows)} jq rows"
        )
        civil_dsn = None
        problem = civil_database_available()
        if problem:
            console.print(
                "[yellow]left out: the simulated civil-affairs system[/yellow] — PostgreSQL at "
                f"127.0.0.1:5432 did not answer ({problem}). Start PostgreSQL, or set "
                "[sources.civil] dsn in a gridhub.toml to a reachable PostgreSQL."
            )
        else:
            civil = stack.enter_context(CivilDatabase())
            civil.load(county.jzdx_rows)
            civil_dsn = civil.dsn
            console.print(
                f"civil-affairs simulator: PostgreSQL database {civil.name} with "
                f"{len(county.jzdx_rows)} jzdx rows"
            )
            roster_dir = drop_rosters(county, directory / "mz-inbox")
            console.print(
                f"civil-affairs roster folder {roster_dir}: "
                f"{len(county.elderly_rosters)} months of 高龄津贴 (GBK CSV) and "
                f"{len(county.disability_rosters)} of 残疾人两项补贴 (XLSX), with .ok markers"
            )
        party = stack.enter_context(
            PartyApiServer(county.party_members, county.party_activities, DEMO_PARTY_TOKEN)
        )
        console.print(
            f"party-building simulator: REST API at {party.base_url} with "
            f"{len(county.party_members)} members"
        )
        hotline = stack.enter_context(
            HotlineApiServer(county.hotline_tickets, DEMO_HOTLINE_KEY, DEMO_HOTLINE_SECRET)
        )
        console.print(
            f"12345 hotline simulator: signed API at {hotline.base_url} with "
            f"{len(county.hotline_tickets)} tickets"
        )
        config = write_config(
            directory,
            police.dsn,
            civil_dsn,
            party.base_url,
            hotline.base_url,
            roster_dir if civil_dsn else None,
        )
        started = time.monotonic()
        status = run_hub_until_caught_up(config)
        run.seconds = time.monotonic() - started
    run.counts = status.get("tables", {})
    _report(run, config, console)
    return run


def drop_rosters(county: County, folder: Path) -> Path:
    """The county's monthly rosters in a clerks' folder, oldest month first, each with its
    marker (as a clerk's copy job leaves them)."""
    from gridhub.simulators.rosters import RosterDirectory

    rosters = RosterDirectory(folder)
    for month, rows in sorted(county.elderly_rosters.items()):
        rosters.drop_elderly(month, rows)
    for month, rows in sorted(county.disability_rosters.items()):
        rosters.drop_disability(month, rows)
    return folder


def _report(run: DemoRun, config: Path, console: Console) -> None:
    from gridhub.store.client import open_client

    settings = load_settings(config)
    client = open_client(settings)
    truth = run.county.truth_police()
    summary = Table("what", "count", title=f"caught up in {run.seconds:.1f} s")
    summary.add_row("syrk rows in the police simulator", str(len(run.county.syrk_rows)))
    summary.add_row("jzdx rows in the civil simulator", str(len(run.county.jzdx_rows)))
    summary.add_row("members in the party simulator", str(len(run.county.party_members)))
    summary.add_row("tickets in the hotline simulator", str(len(run.county.hotline_tickets)))
    summary.add_row("expected residents (generator truth)", str(len(truth.residents)))
    for name, count in run.counts.items():
        summary.add_row(f"grid.{name}", str(count))
    console.print(summary)
    for title, sql in EXAMPLE_QUERIES:
        result = client.query(sql)
        table = Table(*result.column_names, title=title)
        for row in result.result_rows:
            table.add_row(*(str(value) for value in row))
        console.print(f'[bold]gridhub query[/bold] -c {config} "{sql}"')
        console.print(table)
        run.answers.append(
            (title, list(result.column_names), [tuple(r) for r in result.result_rows])
        )
    console.print(
        f"The store stays in {settings.data_dir / 'store'}; try: gridhub query -c {config} "
        '"SELECT * FROM grid.resident FINAL LIMIT 5"'
    )
