"""The roles of outputs.md against the embedded engine, as far as it goes.

chdb cannot create roles (no writable access storage), so what runs here is:
the masked views (schema like any other), the parse of every grant and row
policy by ClickHouse's own parser, the objects they name, the row policy's
condition as a query, and the refusal the hub reports at start.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import clickhouse_connect
import pytest

from gridhub.store.client import close_embedded
from gridhub.store.migrations import migrate
from gridhub.store.roles import (
    ANALYST_HIDDEN,
    DEPARTMENTS,
    access_statements,
    create_roles,
    roles,
)

ID = "32072319650101123X"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    close_embedded()
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path_factory.mktemp('roles')}")
    database = f"grid_{uuid.uuid4().hex[:10]}"
    migrate(client, database)
    client.insert(
        f"{database}.resident",
        [["k1", ID, "王芳", "女", date(1965, 1, 1), "13912345678", "G1", "C1", "幸福路18号",
          True, "第一支部", ["低保"], 2, 1]],
        column_names=["resident_key", "id_number", "name", "gender", "birth_date", "phone",
                      "grid_code", "community_code", "address", "is_party_member",
                      "party_branch", "assistance", "hotline_tickets", "incidents"],
    )  # fmt: skip
    client.insert(
        f"{database}.area",
        [["G1", "一网格", "C1", "S1", 1], ["G2", "二网格", "C1", "S1", 5]],
        column_names=["grid_code", "grid_name", "community_code", "street_code", "residents"],
    )
    yield client, database
    client.close()


def columns(client: Any, database: str, table: str) -> list[str]:
    rows = client.query(
        "SELECT name FROM system.columns WHERE database = %(db)s AND table = %(t)s "
        "ORDER BY position",
        parameters={"db": database, "t": table},
    ).result_rows
    return [row[0] for row in rows]


def test_departments_see_the_id_masked_and_only_their_fields(store: tuple[Any, str]) -> None:
    client, database = store
    for department, fields in DEPARTMENTS.items():
        view = f"resident_{department}"
        seen = columns(client, database, view)
        assert "id_number" not in seen and "id_masked" in seen, view
        assert set(fields) <= set(seen), view
        others = {f for d, fs in DEPARTMENTS.items() if d != department for f in fs}
        assert not (others - set(fields)) & set(seen), view
        (masked,) = client.query(f"SELECT id_masked FROM {database}.{view}").result_rows[0]
        assert masked == "320723********123X"


def test_analysts_see_residents_without_id_phone_and_address(store: tuple[Any, str]) -> None:
    client, database = store
    seen = columns(client, database, "resident_analyst")
    assert not set(ANALYST_HIDDEN) & set(seen)
    assert {"resident_key", "grid_code", "assistance", "hotline_tickets"} <= set(seen)


def test_every_grant_and_policy_parses_and_names_what_exists(store: tuple[Any, str]) -> None:
    client, database = store
    statements = access_statements(database)
    tables = {
        row[0]
        for row in client.query(
            "SELECT name FROM system.tables WHERE database = %(db)s", parameters={"db": database}
        ).result_rows
    }
    for statement in statements:
        client.query("SELECT formatQuery(%(s)s)", parameters={"s": statement})
        for named in re.findall(rf"\b{database}\.(\w+)", statement):
            assert named in tables, statement
    granted = {s.rsplit(" TO ", 1)[1] for s in statements if s.startswith("GRANT")}
    assert granted == set(roles())  # every role may read something


def test_the_grid_workers_policy_keeps_their_grids_only(store: tuple[Any, str]) -> None:
    """The row policy's condition, run as a query by the one user chdb has."""
    client, database = store
    me = client.command("SELECT currentUser()")
    client.insert(f"{database}.worker_grids", [[me, "G2"]], column_names=["user_name", "grid_code"])
    (policy,) = [
        s for s in access_statements(database) if "grid_worker_own ON" in s and "area" in s
    ]
    condition = policy.split(" USING ", 1)[1].rsplit(" TO ", 1)[0]
    rows = client.query(f"SELECT grid_code FROM {database}.area WHERE {condition}").result_rows
    assert rows == [("G2",)]


def test_the_embedded_engine_cannot_create_roles_and_says_why(store: tuple[Any, str]) -> None:
    client, database = store
    outcome = create_roles(client, database)
    assert not outcome.created
    # its one user may not manage access, and with a users.xml that lets it, there is
    # still no writable access storage (README, "Querying the embedded store")
    assert re.search(r"ACCESS_DENIED|ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND", outcome.reason)
    assert "CREATE ROLE" in outcome.reason
