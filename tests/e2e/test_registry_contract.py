"""The schema registry in the embedded default: the hub registers its raw subjects at start,
accepts a record written with an older compatible version, dead-letters an unknown id, and
refuses to start when a subject holds a version its schema may not follow."""

from __future__ import annotations

import json
import signal
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from gridhub.schemas.registry_client import SchemaRegistryClient
from gridhub.simulators.county import County
from gridhub.streams.normalize import CHINA_TZ
from kafka import KafkaProducer

from gridhub.registry.store import SubjectStore
from gridhub.registry.subjects import raw_subjects
from gridhub.topics import Topics
from tests.e2e.conftest import HubProcess, open_store
from tests.gridhub.registry.conftest import (
    SUBJECT,
    hub_schema,
    retyped,
    without_field,
    written_with,
)

pytestmark = pytest.mark.e2e

OLDER_ID_NUMBER = "110105198001010032"
UNKNOWN_SCHEMA_ID = 424242


def stored_events(status: dict[str, Any], source_key: str) -> int:
    """Rows of ``grid.events`` for ``source_key``, asked of the running hub's store."""
    sql = f"SELECT count() FROM grid.events WHERE source_key = '{source_key}'"
    answer = httpx.get(f"http://{status['store_http']}/", params={"query": sql}, timeout=10)
    return int(answer.text.strip() or 0) if answer.status_code == 200 else 0


def test_publishers_on_an_older_version_are_merged_and_unknown_ids_dead_lettered(
    hub: HubProcess, hub_dir: Path, county: County
) -> None:
    hub.start()
    status = hub.wait_caught_up()
    with SchemaRegistryClient(status["registry"]) as registry:
        assert set(raw_subjects(Topics("gridhub"))) <= set(registry.subjects())
        older = without_field(hub_schema(), "lxdh")
        older_id = registry.register(SUBJECT, older)
    now = datetime.now(CHINA_TZ).replace(microsecond=0, tzinfo=None)
    row = dict(county.syrk_rows[0], gxsj=now, rkbh="SELF-OLDER", gmsfhm=OLDER_ID_NUMBER)
    row.pop("lxdh", None)
    producer = KafkaProducer(bootstrap_servers=[status["broker"]["bootstrap"]])
    producer.send("gridhub.raw.police.syrk", value=written_with(older, older_id, row))
    unknown = written_with(hub_schema(), UNKNOWN_SCHEMA_ID, dict(row, lxdh=None))
    producer.send("gridhub.raw.police.syrk", value=unknown)
    producer.flush()
    producer.close()
    before = status["tables"]
    hub.wait_for_rows(before, dead_letters=1)
    hub.wait_for(lambda s: stored_events(s, "SELF-OLDER") == 1)
    assert hub.stop(signal.SIGTERM) == 0
    with closing(open_store(hub_dir)) as client:
        found = client.query(
            "SELECT count() FROM grid.resident FINAL WHERE id_number = %(id)s",
            parameters={"id": OLDER_ID_NUMBER},
        ).result_rows[0][0]
        assert found == 1
        (reason,) = client.query(
            "SELECT reason FROM grid.dead_letters FINAL WHERE raw = %(raw)s",
            parameters={"raw": unknown},
        ).result_rows[0]
        assert f"schema id {UNKNOWN_SCHEMA_ID}" in reason and SUBJECT in reason


def test_the_hub_refuses_to_start_when_a_subject_holds_an_incompatible_version(
    hub: HubProcess, hub_dir: Path
) -> None:
    incompatible = json.dumps(retyped(hub_schema(), "rkbh", "int"))
    SubjectStore(hub.data_dir / "registry").register(SUBJECT, incompatible)
    hub.start()
    assert hub.process is not None
    assert hub.process.wait(timeout=120) == 1
    log = hub.log.read_text("utf-8")
    assert "cannot start" in log and SUBJECT in log and "type_mismatch" in log
