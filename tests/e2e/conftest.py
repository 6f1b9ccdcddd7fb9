"""Fixtures that run the real hub (`gridhub run` in a subprocess) against the simulators."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest
from gridhub.simulators.civil_db import CivilDatabase
from gridhub.simulators.county import County, generate_county
from gridhub.simulators.police_db import PoliceDatabase
from prometheus_client.parser import text_string_to_metric_families


class HubProcess:
    """`gridhub run --config FILE` as a child process, watched through its status file."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.data_dir = config.parent / "data"
        self.log = config.parent / "hub.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        status = self.data_dir / "status.json"
        status.unlink(missing_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gridhub.cli", "run", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})},
            )

    def status(self) -> dict[str, Any] | None:
        path = self.data_dir / "status.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text("utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return data

    def wait_for(self, predicate: Any, timeout: float = 180.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"hub exited early:\n{self.log.read_text()[-3000:]}")
            status = self.status()
            if status is not None and predicate(status):
                return status
            time.sleep(0.25)
        raise AssertionError(
            f"hub did not get there in {timeout} s:\n{self.log.read_text()[-3000:]}"
        )

    def wait_for_rows(self, before: dict[str, Any], **more: int) -> dict[str, Any]:
        """Until each named table holds at least ``more[table]`` rows beyond ``before``
        (the ``tables`` of an earlier status)."""
        return self.wait_for(
            lambda s: all(s["tables"][table] >= before[table] + n for table, n in more.items())
        )

    def wait_caught_up(self, timeout: float = 180.0) -> dict[str, Any]:
        return self.wait_for(lambda s: s.get("caught_up"), timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None


def write_config(directory: Path, police_dsn: str) -> Path:
    from gridhub.demo import write_config as demo_config

    return demo_config(directory, police_dsn)


@pytest.fixture(scope="module")
def county() -> County:
    return generate_county(600, seed=11)


@pytest.fixture
def police(county: County) -> Iterator[PoliceDatabase]:
    with PoliceDatabase() as database:
        database.load(county.syrk_rows, county.jq_rows)
        yield database


@pytest.fixture
def civil(county: County) -> Iterator[CivilDatabase]:
    with CivilDatabase() as database:
        database.load(county.jzdx_rows)
        yield database


@pytest.fixture
def hub_dir(tmp_path: Path, county: County, police: PoliceDatabase) -> Path:
    county.write_reference(tmp_path / "reference")
    write_config(tmp_path, police.dsn)
    return tmp_path


@pytest.fixture
def hub(hub_dir: Path) -> Iterator[HubProcess]:
    process = HubProcess(hub_dir / "gridhub.toml")
    yield process
    process.kill()


def hold_back_newer_half(
    county: County, police: PoliceDatabase
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Take the newer half of the county's ``syrk`` rows out of the database: (the rows
    kept, the rows held back), for a test to add later as rows that arrive meanwhile."""
    rows = sorted(county.syrk_rows, key=lambda r: r["gxsj"])
    half = len(rows) // 2
    with police.connect() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM syrk WHERE rkbh IN %s", ([r["rkbh"] for r in rows[half:]],))
    return rows[:half], rows[half:]


def open_store(directory: Path) -> Any:
    """The hub's embedded store, opened by the test once the hub has stopped."""
    return clickhouse_connect.get_client(dsn=f"chdb://{directory / 'data' / 'store'}")


Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(address: str) -> Samples:
    answer = httpx.get(f"http://{address}/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of a sample over the series that carry ``labels``."""
    return sum(
        value
        for series, value in samples.get(name, {}).items()
        if set(labels.items()) <= set(series)
    )
