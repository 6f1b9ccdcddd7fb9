"""The whole hub, end to end: MariaDB simulator -> connector -> Tansu -> Faust -> chdb.

Each test runs `gridhub run` as a real child process on the embedded broker
and store, and checks the store against the generator's ground truth once the
hub has stopped (chdb admits one process at a time).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest
from gridhub.simulators.county import County
from gridhub.simulators.police_db import PoliceDatabase
from gridhub.streams.normalize import CHINA_TZ
from gridhub.streams.sink import FAILPOINT_STORE_DOWN_SECONDS
from gridhub.streams.topology import FAILPOINT_EXIT_AFTER_INSERTS

from gridhub.store.client import close_embedded
from gridhub.store.serve import StoreServer
from tests.e2e.conftest import HubProcess, hold_back_newer_half, open_store

SERVER_KEY = "server-writer-key-0123456789"

pytestmark = pytest.mark.e2e

FIELDS = (
    "name",
    "gender",
    "birth_date",
    "phone",
    "address",
    "grid_code",
    "community_code",
    "placement",
    "population_type",
    "deregistered",
    "sources",
)


def processes_mentioning(directory: Path) -> list[int]:
    """Pids of live processes whose command line names this test's directory."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and _running(int(proc.name)):
            try:
                cmdline = (proc / "cmdline").read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
            if str(directory) in cmdline:
                pids.append(int(proc.name))
    return pids


def wait_until_gone(pids: list[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_running(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def gridhub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridhub.cli", *args], capture_output=True, text=True, timeout=120
    )


def residents_by_id(client: Any) -> dict[str, dict[str, Any]]:
    result = client.query(
        "SELECT id_number, resident_key, " + ", ".join(FIELDS) + " FROM grid.resident FINAL"
    )
    return {row[0]: dict(zip(result.column_names, row, strict=True)) for row in result.result_rows}


def assert_matches_truth(client: Any, county: County) -> None:
    truth = county.truth_police()
    count = client.query("SELECT count() FROM grid.resident FINAL").result_rows[0][0]
    assert count == len(truth.residents)
    stored = residents_by_id(client)
    assert set(stored) == set(truth.residents)
    mismatches = [
        (id_number, name, stored[id_number][name], expected[name])
        for id_number, expected in truth.residents.items()
        for name in FIELDS
        if name in expected and stored[id_number][name] != expected[name]
    ]
    assert mismatches == []
    dead = client.query(
        "SELECT source_key, reason FROM grid.dead_letters FINAL WHERE entity = 'syrk'"
    ).result_rows
    assert {key for key, _ in dead} == set(truth.dead_letters)
    assert all(reason for _, reason in dead)
    duplicated = client.query(
        "SELECT source, entity, source_key, count() AS n FROM grid.events FINAL "
        "GROUP BY source, entity, source_key HAVING n > 1"
    ).result_rows
    assert duplicated == []  # every record once
    placed = "SELECT resident_key, grid_code, version FROM grid.{} FINAL ORDER BY resident_key"
    by_grid = client.query(placed.format("resident_by_grid")).result_rows
    assert by_grid == client.query(placed.format("resident")).result_rows  # one grid each


def restart_and_check(hub: HubProcess, hub_dir: Path, county: County) -> None:
    """Start the hub (again), let it catch up and stop it: every row is there, once."""
    hub.start()
    hub.wait_caught_up()
    assert hub.stop(signal.SIGTERM) == 0
    with closing(open_store(hub_dir)) as client:
        assert_matches_truth(client, county)


def test_whole_path_matches_the_generator_truth(
    hub: HubProcess, hub_dir: Path, county: County, police: PoliceDatabase
) -> None:
    hub.start()
    status = hub.wait_caught_up()
    health = httpx.get(f"http://{status['health']}/health", timeout=10)
    assert health.status_code == 200, health.text
    components = health.json()["components"]
    for name in ("source.police", "ingest", "route", "merge", "sink", "broker", "clickhouse"):
        assert components[name]["healthy"] is True, name

    # operators query the embedded store while the hub holds it, read-only
    config = str(hub_dir / "gridhub.toml")
    count = gridhub("query", "-c", config, "-f", "csv", "SELECT count() FROM grid.resident FINAL")
    assert count.returncode == 0, count.stderr
    assert count.stdout.splitlines()[1] == str(len(county.truth_police().residents))
    refused = gridhub("query", "-c", config, "DROP TABLE grid.events")
    assert refused.returncode == 1
    assert "readonly" in refused.stderr.lower()

    # bad rows arriving while the hub runs go to dead letters; the good row after them lands
    now = datetime.now(CHINA_TZ).replace(microsecond=0, tzinfo=None)  # gxsj is China time
    template = dict(county.syrk_rows[0])
    good_id = "11010519491231002X"
    bad_check = dict(template, rkbh="BAD-CHECK", gmsfhm="110105194912310021", gxsj=now)
    bad_date = dict(template, rkbh="BAD-DATE", gmsfhm="110105194902300025", gxsj=now)
    bad_shape = dict(template, rkbh="BAD-SHAPE", xb="X", gxsj=now)
    good = dict(
        template, rkbh="GOOD-LATE", gmsfhm=good_id, xm="迟 到", gxsj=now + timedelta(seconds=1)
    )
    police.upsert_syrk([bad_check, bad_date, bad_shape, good])
    before = hub.status() or {}
    dead_before = before.get("tables", {}).get("dead_letters", 0)
    hub.wait_for(
        lambda s: s["tables"].get("dead_letters", 0) >= dead_before + 3 and s.get("caught_up")
    )
    assert hub.stop(signal.SIGTERM) == 0

    with closing(open_store(hub_dir)) as client:
        reasons = dict(
            client.query(
                "SELECT source_key, reason FROM grid.dead_letters FINAL "
                "WHERE source_key IN ('BAD-CHECK', 'BAD-DATE', 'BAD-SHAPE')"
            ).result_rows
        )
        assert "校验位" in reasons["BAD-CHECK"]
        assert "出生日期" in reasons["BAD-DATE"]
        assert "xb" in reasons["BAD-SHAPE"]
        late = client.query(
            "SELECT name, sources FROM grid.resident FINAL WHERE id_number = %(id)s",
            parameters={"id": good_id},
        ).result_rows
        assert late == [("迟到", ["police"])]
        for table in ("resident", "resident_by_grid"):
            client.command(
                f"DELETE FROM grid.{table} WHERE id_number = %(id)s", parameters={"id": good_id}
            )
        client.command("DELETE FROM grid.dead_letters WHERE source_key LIKE 'BAD-%'")
        assert_matches_truth(client, county)
        events = client.query(
            "SELECT entity, count() FROM grid.events FINAL GROUP BY entity"
        ).result_rows
        truth = county.truth_police()
        assert dict(events) == {
            "syrk": len(county.syrk_rows) - len(truth.dead_letters) + 1,
            "jq": len(county.jq_rows),
        }


def test_restart_in_the_middle_loses_and_duplicates_nothing(
    hub: HubProcess, hub_dir: Path, county: County, police: PoliceDatabase
) -> None:
    # the database starts with half of the county; the rest arrives while the hub is down
    _kept, later = hold_back_newer_half(county, police)
    hub.start()
    hub.wait_caught_up()
    assert hub.process is not None
    children = [pid for pid in processes_mentioning(hub_dir) if pid != hub.process.pid]
    stages = sorted(
        Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[2].decode() for pid in children
    )  # python -m gridhub.<stage>: the ingest, route and two merge processes (the default)
    assert stages == [
        "gridhub.ingest_worker",
        "gridhub.merge_worker",
        "gridhub.merge_worker",
        "gridhub.route_worker",
    ]
    hub.kill()  # kill -9: no graceful shutdown, the broker dies with the hub
    assert wait_until_gone(children), "the hub's children outlived a kill -9"

    police.upsert_syrk(later)
    hub.start()
    hub.wait_for(lambda s: s["sources"].get("police", {}).get("records", 0) > 0)
    hub.kill()  # killed again mid-run, with batches in flight

    restart_and_check(hub, hub_dir, county)


def test_merging_in_the_hubs_own_process_gives_the_same_residents(
    hub: HubProcess,
    hub_dir: Path,
    county: County,
    police: PoliceDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``[hub] merge_processes = 0``: the merge stores its rows itself, no ``rows`` topic."""
    monkeypatch.setenv("GRIDHUB_HUB__MERGE_PROCESSES", "0")
    hub.start()
    status = hub.wait_caught_up()
    accepted = len(county.syrk_rows) + len(county.jq_rows) - len(county.truth_police().dead_letters)
    assert status["stages"]["merged"] >= accepted  # copies the phone stage moves count again
    assert "gridhub.rows" not in status["lag"]
    assert not (hub_dir / "data" / "logs" / "merge.log").exists()
    assert hub.stop(signal.SIGTERM) == 0
    with closing(open_store(hub_dir)) as client:
        assert_matches_truth(client, county)
        records = client.query(
            "SELECT uniqExact(entity, source_key) FROM grid.events FINAL WHERE source = 'police'"
        ).result_rows[0][0]
        assert records == accepted  # every accepted record once


def test_dying_between_insert_and_commit_loses_and_duplicates_nothing(
    hub: HubProcess, hub_dir: Path, county: County, police: PoliceDatabase
) -> None:
    """Exactly-once effect at the sink: the hub dies right after its third insert, before
    acknowledging it or committing Kafka offsets; the restarted hub stores those batches
    again, and the tables absorb them."""
    hub.start(extra_env={FAILPOINT_EXIT_AFTER_INSERTS: "3"})
    assert hub.process is not None
    assert hub.process.wait(timeout=180) == 137  # it died at the failpoint
    hub.process = None
    with closing(open_store(hub_dir)) as client:
        stored = client.query("SELECT count() FROM grid.events").result_rows[0][0]
    assert stored > 0  # the inserts before the death are in the store
    restart_and_check(hub, hub_dir, county)


def test_a_store_outage_holds_the_pipeline_back_and_loses_nothing(
    hub: HubProcess, hub_dir: Path, county: County, police: PoliceDatabase
) -> None:
    """The store refuses every insert for a while: the sink retries with backoff and
    acknowledges nothing (no checkpoint moves, no offset is committed, nothing is
    dropped), then the backlog drains once it is back."""
    hub.start(extra_env={FAILPOINT_STORE_DOWN_SECONDS: "8"})
    refused = hub.wait_for(lambda s: s["stages"]["sink_retries"] > 0)
    assert not refused["caught_up"]  # nothing acknowledged while the store is down
    assert refused["stages"]["sunk_rows"] == 0
    status = hub.wait_caught_up()
    assert status["stages"]["sink_retries"] > 0
    assert hub.stop(signal.SIGTERM) == 0
    with closing(open_store(hub_dir)) as client:
        assert_matches_truth(client, county)


def test_a_clickhouse_server_that_stops_serving_and_comes_back_loses_and_doubles_nothing(
    hub: HubProcess, hub_dir: Path, county: County, police: PoliceDatabase
) -> None:
    """The production path: the sink reaches the store over HTTP as clickhouse-connect
    reaches a ClickHouse server (here the store served by this test, with a writer key).
    The server goes away while rows wait, and comes back on the same port: the sink
    retries, acknowledges nothing meanwhile, and then stores everything exactly once."""
    close_embedded()
    path = str(hub_dir / "server-store")
    own = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    own.command("CREATE DATABASE IF NOT EXISTS grid")  # as CLICKHOUSE_DB does in compose
    server = StoreServer("127.0.0.1:0", path, writer_key=SERVER_KEY)
    server.start()
    address = server.address
    _kept, later = hold_back_newer_half(county, police)
    try:
        hub.start(
            extra_env={
                "GRIDHUB_CLICKHOUSE__URL": f"http://gridhub:env:STORE_KEY@{address}/grid",
                "STORE_KEY": SERVER_KEY,
            }
        )
        first = hub.wait_caught_up()
        server.stop()  # ClickHouse stops serving
        police.upsert_syrk(later)
        down = hub.wait_for(lambda s: s["stages"]["sink_retries"] > 0)
        time.sleep(3)
        still = hub.wait_for(
            lambda s: s["written_at"] > down["written_at"] and bool(s.get("store_error"))
        )
        assert not still["caught_up"]  # nothing acknowledged while the server is away
        assert still["stages"]["sunk_rows"] == down["stages"]["sunk_rows"]
        assert still["sources"]["police"]["records"] > first["sources"]["police"]["records"]
        assert "ClickHouse does not answer" in still["store_error"]
        health = httpx.get(f"http://{still['health']}/health", timeout=10)
        assert health.status_code == 503
        components = health.json()["components"]
        assert components["clickhouse"]["healthy"] is False
        assert "ClickHouse did not take" in components["sink"]["reason"]
        server = StoreServer(address, path, writer_key=SERVER_KEY)  # back, same address
        server.start()
        hub.wait_caught_up()
        assert hub.stop(signal.SIGTERM) == 0
        assert_matches_truth(own, county)
    finally:
        server.stop()
        own.close()
        close_embedded()
