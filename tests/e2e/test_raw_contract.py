"""Systems that publish themselves to the raw topics (the ingest contract, README): one
Avro record, one JSON record with its header, and a message of no known shape."""

from __future__ import annotations

import json
import signal
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest
from gridhub.schemas import encode_dict
from gridhub.simulators.county import County
from gridhub.simulators.police_db import PoliceDatabase
from gridhub.streams.normalize import CHINA_TZ
from kafka import KafkaProducer

from tests.e2e.conftest import HubProcess, open_store

pytestmark = pytest.mark.e2e

AVRO_ID, JSON_ID = "11010519491231002X", "110105194912310038"


def test_records_published_straight_to_a_raw_topic_are_merged_and_junk_is_dead_lettered(
    hub: HubProcess, hub_dir: Path, county: County, police: PoliceDatabase
) -> None:
    hub.start()
    status = hub.wait_caught_up()
    now = datetime.now(CHINA_TZ).replace(microsecond=0, tzinfo=None)
    template = dict(county.syrk_rows[0], gxsj=now)
    producer = KafkaProducer(bootstrap_servers=[status["broker"]["bootstrap"]])
    topic = "gridhub.raw.police.syrk"
    producer.send(topic, key=b"JUNK", value=b"neither avro nor json with a header")
    producer.flush()
    hub.wait_for_rows(status["tables"], dead_letters=1)
    avro_row = dict(template, rkbh="SELF-AVRO", gmsfhm=AVRO_ID)
    producer.send(topic, key=b"SELF-AVRO", value=encode_dict("SyrkRow", avro_row))
    json_row = {**template, "rkbh": "SELF-JSON", "gmsfhm": JSON_ID, "gxsj": now.isoformat()}
    producer.send(
        topic,
        key=b"SELF-JSON",
        value=json.dumps(json_row, ensure_ascii=False, default=str).encode(),
        headers=[("content-type", b"application/json")],
    )
    producer.flush()
    producer.close()
    # The hub kept running through the junk, and a stop right after the records were
    # published stores them first: the embedded broker forgets its topics at stop, and
    # no connector checkpoint would bring these records back.
    assert hub.stop(signal.SIGTERM) == 0
    with closing(open_store(hub_dir)) as client:
        ids = {
            row[0]
            for row in client.query(
                "SELECT id_number FROM grid.resident FINAL WHERE id_number IN %(ids)s",
                parameters={"ids": [AVRO_ID, JSON_ID]},
            ).result_rows
        }
        assert ids == {AVRO_ID, JSON_ID}
        (reason,) = client.query(
            "SELECT reason FROM grid.dead_letters FINAL WHERE raw = %(raw)s",
            parameters={"raw": b"neither avro nor json with a header"},
        ).result_rows[0]
        assert "content-type: application/json" in reason
