"""A failing source is reported unhealthy and retried, and never stops the others.

The real ``Ingest`` with two sources: the police database (MariaDB simulator),
which works, and the party API (loopback simulator), which refuses the token
until the operator fixes it. Both publish to the embedded broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from gridhub.simulators.county import generate_county
from gridhub.simulators.party_api import PartyApiServer
from gridhub.simulators.police_db import PoliceDatabase
from kafka.admin import KafkaAdminClient, NewTopic

from gridhub.config import load_settings
from gridhub.ingest import Ingest
from gridhub.runtime.broker import EmbeddedBroker
from gridhub.topics import Topics

TOKEN = "the-right-party-token"


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_refused_source_is_unhealthy_and_retried_while_the_others_go_on(
    broker: EmbeddedBroker,
    police_db: PoliceDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the libraries' (httpx, kafka) included
    county = generate_county(150, seed=8)
    police_db.load(county.syrk_rows, county.jq_rows)
    topics = Topics(prefix=f"ingest{int(time.time() * 1000)}")
    admin = KafkaAdminClient(bootstrap_servers=[broker.bootstrap], client_id="tests-admin")
    admin.create_topics([NewTopic(name, 1, 1) for name in topics.all_raw()])
    admin.close()
    with PartyApiServer(county.party_members, county.party_activities, TOKEN) as party:
        config = tmp_path / "gridhub.toml"
        config.write_text(
            f'[hub]\ndata_dir = "data"\n[kafka]\nbootstrap = "{broker.bootstrap}"\n'
            f'topic_prefix = "{topics.prefix}"\ngroup_id = "{topics.prefix}"\n'
            f'[sources.police]\ndsn = "{police_db.dsn}"\npoll_seconds = 0.1\n'
            f'[sources.party]\nbase_url = "{party.base_url}"\ntoken = "env:TEST_PARTY_TOKEN"\n'
            "poll_seconds = 0.1\n",
            "utf-8",
        )
        monkeypatch.setenv("TEST_PARTY_TOKEN", "a-stale-token")
        ingest = Ingest(load_settings(config), broker.bootstrap, topics)
        ingest.start()
        try:  # the group assigns both sources to the only member
            wait_until(lambda: {s.name for s in ingest.sources} == {"police", "party"})
            police = next(s for s in ingest.sources if s.name == "police")
            refused = next(s for s in ingest.sources if s.name == "party")
            wait_until(lambda: police.health.caught_up and refused.health.errors >= 3)
            assert police.health.healthy
            assert police.health.records == len(county.syrk_rows) + len(county.jq_rows)
            status = ingest.status()["sources"]["party"]
            assert status["healthy"] is False
            assert "sources.party.token" in status["reason"]
            assert "a-stale-token" not in str(ingest.status())
            logged = "\n".join(
                f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records
            )
            assert "sources.party.token" in logged  # the refusal was logged ...
            assert "a-stale-token" not in logged  # ... without the token
            assert ingest.caught_up() is False  # not while a source fails
        finally:
            ingest.stop()
