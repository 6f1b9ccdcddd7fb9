"""The roles of outputs.md: masked views, grants and row policies, refused by ClickHouse itself.

The views are schema like any table (migration 4) and work everywhere, the
embedded engine included. Roles, grants and row policies need an engine with a
writable access storage: a ClickHouse server where the hub's user has access
management. chdb has none (it ignores ``user_directories``), so on the embedded
store :func:`create_roles` reports that it could not, and the hub says so at
start: it never pretends to enforce roles.

Which fields each department's view shows is not in the spec; the choice,
written in the README: everyone sees the resident's key, masked ID (first 6 +
last 4), name, gender, birth date, grid and community; party-building adds
membership, branch and 双报到; public security adds population type,
deregistration, address and incident count; civil affairs adds assistance,
address and phone; the hotline adds ticket counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from gridhub.logs import get_logger

log = get_logger("store.roles")

MASKED_ID = (
    "if(id_number IS NULL, NULL, "
    "concat(substring(id_number, 1, 6), '********', substring(id_number, 15, 4)))"
)
"""公民身份号码 as departments see it: the first 6 and the last 4 characters."""
EVERYONE = (
    "resident_key",
    f"{MASKED_ID} AS id_masked",
    "name",
    "gender",
    "birth_date",
    "grid_code",
    "community_code",
    "version",
    "updated_at",
)
DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "party": ("is_party_member", "party_branch", "double_report_community"),
    "police": ("population_type", "deregistered", "address", "incidents"),
    "civil": ("assistance", "address", "phone"),
    "hotline": ("hotline_tickets", "hotline_open"),
}
"""What each department's view shows besides :data:`EVERYONE`."""
ANALYST_HIDDEN = ("id_number", "phone", "address")


def view_statements() -> tuple[str, ...]:
    """The masked views and the table of grid workers' grids, ``{db}`` for the database."""
    views = [
        """
        CREATE TABLE IF NOT EXISTS {db}.worker_grids (
            user_name String,
            grid_code String,
            assigned_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = ReplacingMergeTree(assigned_at)
        ORDER BY (user_name, grid_code)
        """,
        f"""
        CREATE OR REPLACE VIEW {{db}}.resident_analyst SQL SECURITY DEFINER AS
        SELECT * EXCEPT ({", ".join(ANALYST_HIDDEN)}) FROM {{db}}.resident FINAL
        """,
    ]
    for department, fields in DEPARTMENTS.items():
        columns = ", ".join((*EVERYONE, *fields))
        views.append(
            f"CREATE OR REPLACE VIEW {{db}}.resident_{department} SQL SECURITY DEFINER AS "
            f"SELECT {columns} FROM {{db}}.resident FINAL"
        )
    return tuple(views)


def access_statements(database: str) -> list[str]:
    """Roles, grants and row policies of outputs.md for ``database``."""
    db = database
    out = [f"CREATE ROLE IF NOT EXISTS {role}" for role in roles()]
    out.append(f"GRANT SELECT ON {db}.* TO grid_admin")
    out.append(f"GRANT SELECT ON {db}.area TO grid_analyst")
    out.append(f"GRANT SELECT ON {db}.resident_analyst TO grid_analyst")
    for department in DEPARTMENTS:
        out.append(f"GRANT SELECT ON {db}.area TO dept_{department}")
        out.append(f"GRANT SELECT ON {db}.resident_{department} TO dept_{department}")
    for table in ("resident", "resident_by_grid", "area"):
        out.append(f"GRANT SELECT ON {db}.{table} TO grid_worker")
        out.append(
            f"CREATE ROW POLICY IF NOT EXISTS grid_worker_own ON {db}.{table} FOR SELECT "
            f"USING grid_code IN (SELECT grid_code FROM {db}.worker_grids FINAL "
            "WHERE user_name = currentUser()) TO grid_worker"
        )
        # a policy for one role hides every row from everyone else unless they have one too
        out.append(
            f"CREATE ROW POLICY IF NOT EXISTS everyone_else ON {db}.{table} FOR SELECT "
            "USING 1 TO ALL EXCEPT grid_worker"
        )
    return out


def roles() -> list[str]:
    return [
        "grid_admin",
        "grid_analyst",
        *(f"dept_{department}" for department in DEPARTMENTS),
        "grid_worker",
    ]


@dataclass(frozen=True)
class RolesOutcome:
    """Whether the roles exist in the store now, and if not, why."""

    created: bool
    reason: str = ""


def create_roles(client: Client, database: str) -> RolesOutcome:
    """Create the roles, grants and row policies (idempotent); on an engine without a
    writable access storage (the embedded one) nothing is created and the reason says
    so, for the hub to tell the operator."""
    for statement in access_statements(database):
        try:
            client.command(statement)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0][:300]
            log.warning(
                "roles not created: the store cannot enforce them; serve it to its operator only",
                statement=statement.split(" ON ")[0][:60],
                reason=reason,
            )
            return RolesOutcome(False, reason)
    return RolesOutcome(True)
