"""``make demo`` (``gridhub demo``): the whole hub on this machine, with every simulator.

The README promises that one command runs the hub's main job on the embedded
default and shows results; this runs that path on a small county and checks what
it shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from gridhub.demo import EXAMPLE_QUERIES, run_demo
from gridhub.store.client import close_embedded

pytestmark = pytest.mark.e2e


def test_the_demo_runs_every_system_and_answers_every_example_query(tmp_path: Path) -> None:
    close_embedded()  # chdb holds one store per process; the demo opens its own
    run = run_demo(tmp_path / "demo", residents=300, seed=5, console=Console(quiet=True))
    close_embedded()
    assert run.counts["resident"] >= len(run.county.truth_police().residents)
    assert run.counts["area"] == len(run.county.geography.grids)
    assert [title for title, _, _ in run.answers] == [title for title, _ in EXAMPLE_QUERIES]
    answers = {title: rows for title, _, rows in run.answers}
    assert all(answers.values()), "every example query has rows"
    busiest = answers["The busiest unified grids (grid.area, one row per grid)"]
    assert sum(row[1] for row in busiest) > 0  # residents counted in grid.area
    letters = answers["Dead letters by reason (records the hub could not use)"]
    assert {"police", "civil"} <= {row[0] for row in letters}  # mistyped IDs, mangled rosters
