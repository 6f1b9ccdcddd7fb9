"""The connectors wait until every stage downstream has its partitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridhub.config import GridhubSettings, load_settings
from gridhub.hub import ROUTE_STATUS_FILE, merge_status_file, pipeline_ready
from gridhub.runtime.files import write_json_atomic


def settings_in(tmp_path: Path, merge_processes: int) -> GridhubSettings:
    config = tmp_path / "gridhub.toml"
    config.write_text(
        f'[hub]\ndata_dir = "data"\nmerge_processes = {merge_processes}\n[kafka]\npartitions = 4\n',
        "utf-8",
    )
    settings = load_settings(config)
    settings.data_dir.mkdir(parents=True)
    return settings


@pytest.mark.parametrize("merge_processes", [1, 2])
def test_ready_once_route_and_every_merge_process_have_partitions(
    tmp_path: Path, merge_processes: int
) -> None:
    settings = settings_in(tmp_path, merge_processes)
    data = settings.data_dir
    assert not pipeline_ready(settings)
    write_json_atomic(data / ROUTE_STATUS_FILE, {"assigned": 2})
    assert not pipeline_ready(settings)
    halves = [[0, 1], [2, 3]] if merge_processes == 2 else [[0, 1, 2, 3]]
    write_json_atomic(data / merge_status_file(0), {"assigned": halves[0]})
    assert pipeline_ready(settings) is (merge_processes == 1)
    if merge_processes == 2:
        write_json_atomic(data / merge_status_file(1), {"assigned": []})
        assert not pipeline_ready(settings)  # it has nothing yet
        write_json_atomic(data / merge_status_file(1), {"assigned": halves[1]})
        assert pipeline_ready(settings)


def test_merging_in_the_hub_needs_only_the_route(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, 0)
    write_json_atomic(settings.data_dir / ROUTE_STATUS_FILE, {"assigned": 1})
    assert pipeline_ready(settings)
