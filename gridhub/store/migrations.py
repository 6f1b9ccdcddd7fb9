"""Versioned schema of the contract tables (``spec/outputs.md``), applied at start.

Each migration is a numbered list of idempotent statements (``IF NOT
EXISTS``), recorded in ``<db>.schema_migrations`` once applied, so starting
the hub twice, or two hubs at once, changes nothing the second time.

Engines are chosen so that a replayed batch changes nothing:
``ReplacingMergeTree`` keyed by what makes a row the same row, with the
version that decides which copy survives (see ``deploy/README.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from gridhub.logs import get_logger
from gridhub.store.roles import RolesOutcome, create_roles, roles, view_statements

log = get_logger("store.migrations")


@dataclass(frozen=True)
class Migration:
    """One step of the schema; ``{db}`` in a statement is the configured database."""

    version: int
    description: str
    statements: tuple[str, ...]
    step: Callable[[Client, str], None] | None = None
    """Run after the statements, for what a statement cannot say idempotently."""


_UNLINKED_V3 = """
CREATE TABLE IF NOT EXISTS {db}.unlinked_v3 (
    source LowCardinality(String),
    entity LowCardinality(String),
    source_key String,
    event_time DateTime64(3, 'UTC'),
    why String,
    grid_code Nullable(String),
    community_code Nullable(String),
    payload String,
    updated_at DateTime64(3, 'UTC'),
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(updated_at, is_deleted)
ORDER BY (source, entity, source_key)
"""


def _unlinked_with_deletes(client: Client, database: str) -> None:
    """Rebuild ``unlinked`` on ``ReplacingMergeTree(updated_at, is_deleted)``: a record
    that links late leaves it (``FINAL`` no longer shows it). An engine cannot be altered,
    so the rows move to a new table that takes the old one's place; a second run after a
    crash finds the column there and only tidies up."""
    has_column = client.query(
        "SELECT count() FROM system.columns "
        "WHERE database = %(db)s AND table = 'unlinked' AND name = 'is_deleted'",
        parameters={"db": database},
    ).result_rows[0][0]
    if not has_column:
        client.command(f"DROP TABLE IF EXISTS {database}.unlinked_v3")
        client.command(_UNLINKED_V3.format(db=database))
        client.command(
            f"INSERT INTO {database}.unlinked_v3 (source, entity, source_key, event_time, why, "
            "grid_code, community_code, payload, updated_at) SELECT source, entity, source_key, "
            f"event_time, why, grid_code, community_code, payload, updated_at "
            f"FROM {database}.unlinked"
        )
        client.command(f"EXCHANGE TABLES {database}.unlinked AND {database}.unlinked_v3")
    client.command(f"DROP TABLE IF EXISTS {database}.unlinked_v3")


_RESIDENT_COLUMNS = (
    "resident_key, id_number, name, gender, birth_date, phone, grid_code, community_code, "
    "address, placement, population_type, deregistered, is_party_member, party_branch, "
    "double_report_community, assistance, hotline_tickets, hotline_open, incidents, sources, "
    "field_sources, conflicts, version, updated_at"
)
"""The columns ``resident_by_grid`` copies. A migration adding a column to ``resident``
adds it to ``resident_by_grid`` and recreates the feed with it."""


def _fill_resident_by_grid(client: Client, database: str) -> None:
    """Copy the residents stored before the feed existed: their current rows only (FINAL),
    so no resident appears in a grid it left. A second run after a crash copies them
    again, which the table absorbs."""
    client.command(
        f"INSERT INTO {database}.resident_by_grid ({_RESIDENT_COLUMNS}) "
        f"SELECT {_RESIDENT_COLUMNS} FROM {database}.resident FINAL"
    )
    _report_roles(create_roles(client, database))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "contract tables: resident, area, events, dead_letters, unlinked",
        (
            """
            CREATE TABLE IF NOT EXISTS {db}.resident (
                resident_key String,
                id_number Nullable(String),
                name String,
                gender LowCardinality(String),
                birth_date Nullable(Date32),  -- Date stops at 1970; residents are older
                phone Nullable(String),
                grid_code Nullable(String),
                community_code Nullable(String),
                address String,
                placement LowCardinality(String),
                population_type LowCardinality(String),
                deregistered Bool,
                is_party_member Bool,
                party_branch String,
                double_report_community Nullable(String),
                assistance Array(LowCardinality(String)),
                hotline_tickets UInt32,
                hotline_open UInt32,
                incidents UInt32,
                sources Array(LowCardinality(String)),
                field_sources Map(String, String),
                conflicts Array(String),
                version UInt64,
                updated_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY resident_key
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.area (
                grid_code String,
                grid_name String,
                community_code String,
                street_code String,
                residents UInt32,
                floating_population UInt32,
                deregistered UInt32,
                party_members UInt32,
                double_report_members UInt32,
                assistance_recipients UInt32,
                elderly_80_plus UInt32,
                hotline_tickets_30d UInt32,
                hotline_open UInt32,
                incidents_30d UInt32,
                volunteer_hours_30d Float64,
                unplaced_nearby UInt32,
                version UInt64,
                updated_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (community_code, grid_code)
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.events (
                source LowCardinality(String),
                entity LowCardinality(String),
                source_key String,
                event_time DateTime64(3, 'UTC'),
                ingested_at DateTime64(3, 'UTC'),
                resident_key Nullable(String),
                grid_code Nullable(String),
                payload String
            ) ENGINE = ReplacingMergeTree(ingested_at)
            PARTITION BY toYYYYMM(event_time)
            ORDER BY (source, entity, source_key, event_time)
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.dead_letters (
                source LowCardinality(String),
                entity LowCardinality(String),
                source_key String,
                reason String,
                raw String,
                raw_hash String,
                received_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(received_at)
            ORDER BY (source, entity, raw_hash)
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.unlinked (
                source LowCardinality(String),
                entity LowCardinality(String),
                source_key String,
                event_time DateTime64(3, 'UTC'),
                why String,
                grid_code Nullable(String),
                community_code Nullable(String),
                payload String,
                updated_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY (source, entity, source_key)
            """,
        ),
    ),
    Migration(
        2,
        "grid_map: the unified grids of the reference data, for grid.area",
        (
            """
            CREATE TABLE IF NOT EXISTS {db}.grid_map (
                grid_code String,
                grid_name String,
                community_code String,
                street_code String,
                fingerprint String  -- of the reference data the map came from
            ) ENGINE = MergeTree
            ORDER BY grid_code
            """,
        ),
    ),
    Migration(
        3,
        "identity rule 2: events.link_rule; unlinked rows leave when their record links late",
        (
            """
            ALTER TABLE {db}.events
                ADD COLUMN IF NOT EXISTS link_rule LowCardinality(String) DEFAULT ''
            """,
        ),
        _unlinked_with_deletes,
    ),
    Migration(
        4,
        "roles of outputs.md: masked resident views, worker_grids, and roles, grants and "
        "row policies where the engine has access storage",
        view_statements(),
        lambda client, database: _report_roles(create_roles(client, database)),
    ),
    Migration(
        5,
        "resident_by_grid: grid.resident ordered by grid, for a grid's residents without a "
        "full scan; fed from resident, departures hide residents in grids they left",
        (
            """
            CREATE TABLE IF NOT EXISTS {db}.resident_by_grid (
                resident_key String,
                id_number Nullable(String),
                name String,
                gender LowCardinality(String),
                birth_date Nullable(Date32),
                phone Nullable(String),
                grid_code Nullable(String),
                community_code Nullable(String),
                address String,
                placement LowCardinality(String),
                population_type LowCardinality(String),
                deregistered Bool,
                is_party_member Bool,
                party_branch String,
                double_report_community Nullable(String),
                assistance Array(LowCardinality(String)),
                hotline_tickets UInt32,
                hotline_open UInt32,
                incidents UInt32,
                sources Array(LowCardinality(String)),
                field_sources Map(String, String),
                conflicts Array(String),
                version UInt64,
                updated_at DateTime64(3, 'UTC'),
                is_deleted UInt8 DEFAULT 0
            ) ENGINE = ReplacingMergeTree(version, is_deleted)
            ORDER BY (grid_code, resident_key)
            SETTINGS allow_nullable_key = 1
            """,
            f"""
            CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.resident_by_grid_feed
            TO {{db}}.resident_by_grid AS
            SELECT {_RESIDENT_COLUMNS}, 0 AS is_deleted FROM {{db}}.resident
            """,
        ),
        _fill_resident_by_grid,
    ),
)


def _report_roles(outcome: RolesOutcome) -> None:
    if outcome.created:
        log.info("roles, grants and row policies created", roles=len(roles()))


_LEDGER = """
CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
    version UInt32,
    description String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
"""


def applied_versions(client: Client, database: str) -> set[int]:
    """Versions already recorded in the ledger table."""
    rows = client.query(f"SELECT version FROM {database}.schema_migrations FINAL").result_rows
    return {int(row[0]) for row in rows}


def migrate(client: Client, database: str = "grid") -> list[int]:
    """Apply every migration not yet recorded; returns the versions applied now."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(_LEDGER.format(db=database))
    done = applied_versions(client, database)
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for statement in migration.statements:
            client.command(statement.format(db=database))
        if migration.step is not None:
            migration.step(client, database)
        client.insert(
            f"{database}.schema_migrations",
            [[migration.version, migration.description]],
            column_names=["version", "description"],
        )
        log.info("migration applied", version=migration.version, what=migration.description)
        applied.append(migration.version)
    return applied
