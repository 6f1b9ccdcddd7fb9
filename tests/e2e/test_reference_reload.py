"""``gridhub reference reload`` while the hub runs: a building moves to another grid.

The grid-governance centre issues a map in which one building belongs to another
grid. After the reload, exactly the residents the new map places elsewhere get a
new row (in the new grid), every other resident row is untouched (same version),
and ``grid.area`` changes for the two grids concerned (and the grids of records
without a resident that the move re-placed), nowhere else.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from gridhub.simulators.county import County

from gridhub.store.area import COUNTS
from tests.e2e.conftest import HubProcess, open_store

pytestmark = pytest.mark.e2e


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridhub.cli", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def stored(directory: Path) -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    """Resident rows (key -> grid, community, placement, version) and area rows (grid ->
    counts, version), read with the hub stopped; ``resident_by_grid`` holds the same
    residents, each in its one grid."""
    with closing(open_store(directory)) as client:
        columns = "resident_key, grid_code, community_code, placement, version"
        residents = {
            row[0]: tuple(row[1:])
            for row in client.query(f"SELECT {columns} FROM grid.resident FINAL").result_rows
        }
        by_grid = client.query(f"SELECT {columns} FROM grid.resident_by_grid FINAL").result_rows
        assert {row[0]: tuple(row[1:]) for row in by_grid} == residents
        assert len(by_grid) == len(residents)
        area = {
            row[0]: tuple(row[1:])
            for row in client.query(
                f"SELECT grid_code, {', '.join(COUNTS)}, version FROM grid.area FINAL"
            ).result_rows
        }
    return residents, area


def move_building(reference: Path, county: County) -> tuple[str, str, str]:
    """Rewrite addresses.csv so the most populated building belongs to another grid of its
    community; returns (address id, old grid, new grid)."""
    people = Counter(person.address_id for person in county.persons)
    building, _ = people.most_common(1)[0]
    path = reference / "addresses.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    row = next(r for r in rows if r["address_id"] == building)
    old = row["grid_code"]
    grids = county.geography.grids_of_community[old[:12]]
    new = next(g.code for g in grids if g.code != old)
    row["grid_code"] = new
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return building, old, new


def test_a_reload_moves_exactly_the_building_s_residents_and_two_areas(
    hub_dir: Path, hub: HubProcess, county: County
) -> None:
    config = hub_dir / "gridhub.toml"
    hub.start()
    hub.wait_caught_up()
    assert hub.stop(signal.SIGTERM) == 0
    residents_before, area_before = stored(hub_dir)

    hub.start()
    hub.wait_caught_up()
    _, old, new = move_building(hub_dir / "reference", county)  # issued while the hub runs
    answer = cli(config, "reference", "reload")
    assert answer.returncode == 0, answer.stderr
    assert "grid map reloaded" in answer.stdout
    in_old = residents_before and sum(1 for r in residents_before.values() if r[0] == old)
    deadline = time.monotonic() + 120
    while True:  # the merge partitions re-place their residents, then grid.area follows
        query = cli(config, "query", "-f", "csv",
                    f"SELECT residents FROM grid.area FINAL WHERE grid_code = '{old}'")  # fmt: skip
        if query.returncode == 0 and query.stdout.strip().splitlines()[-1] != str(in_old):
            break
        assert time.monotonic() < deadline, query.stdout + query.stderr
        time.sleep(1)
    again = cli(config, "reference", "reload")
    assert "nothing to re-place" in again.stdout  # the same map twice: nothing happens
    assert hub.stop(signal.SIGTERM) == 0
    residents_after, area_after = stored(hub_dir)

    assert set(residents_after) == set(residents_before)
    changed = {k for k, row in residents_after.items() if row != residents_before[k]}
    assert changed, "the moved building's residents got new rows"
    for key in changed:
        before, after = residents_before[key], residents_after[key]
        assert (before[0], after[0]) == (old, new), key  # only movers, from old to new
        assert after[3] > before[3]
    moved = len(changed)
    assert area_after[old][0] == area_before[old][0] - moved
    assert area_after[new][0] == area_before[new][0] + moved
    rewritten = {g for g, row in area_after.items() if row[-1] != area_before[g][-1]}
    assert {old, new} <= rewritten
    for grid in rewritten - {old, new}:  # only records without a resident moved these
        assert area_after[grid][0] == area_before[grid][0]
