"""The hub's configuration: one ``gridhub.toml`` read into one typed model.

Precedence, highest first: environment variables ``GRIDHUB_<SECTION>__<KEY>``
(``GRIDHUB_SOURCES__POLICE__DSN`` for nested sections), then the TOML file,
then the defaults documented here. A secret may be written as ``env:VAR``
instead of a literal, also as the password inside a DSN
(``mysql://reader:env:POLICE_PW@host:3306/ga_rkxx``); it is resolved when the
configuration is loaded, so a missing variable is reported before anything
starts. Relative paths are relative to the configuration file.

Every problem is reported as one :class:`~gridhub.errors.ConfigError` naming
each wrong key and what was expected.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gridhub.errors import ConfigError

ENV_PREFIX = "GRIDHUB_"
EMBEDDED = "embedded"


def resolve_secret(value: str, *, key: str) -> str:
    """Turn ``env:VAR`` into the variable's value; anything else is a literal."""
    if not value.startswith("env:"):
        return value
    var = value[4:]
    if not var:
        raise ValueError(f"{key}: 'env:' must be followed by a variable name")
    if var not in os.environ:
        raise ValueError(f"{key} refers to environment variable {var}, which is not set")
    return os.environ[var]


def resolve_dsn_secret(dsn: str, *, key: str) -> str:
    """Resolve an ``env:VAR`` password inside a DSN, keeping the rest as written."""
    parts = urlsplit(dsn)
    if parts.password is None or not unquote(parts.password).startswith("env:"):
        return dsn
    password = resolve_secret(unquote(parts.password), key=key)
    user = parts.username or ""
    hostport = parts.netloc.rpartition("@")[2]  # keeps IPv6 brackets and the port
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_dsn(dsn: str) -> str:
    """The DSN with its password replaced, for logs and errors."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HubConfig(_Section):
    """``[hub]``: where the hub keeps its own files and listens."""

    data_dir: Path = Path("./gridhub-data")
    """Embedded broker, embedded store, checkpoints and merge state live here."""
    listen: str = "127.0.0.1:8080"
    """Address of /health, /metrics, the dashboard and HTTP ingest."""
    pseudonym_key: SecretStr | None = None
    """Key of the keyed hash behind ``resident_key``. Processes sharing a store must
    share it; when absent the hub creates one in ``data_dir`` on first start."""
    log_format: Literal["text", "json"] = "text"
    """``json`` writes one JSON object per log line."""
    ingest_process: bool = True
    """Run the connectors and the route stage in child processes, so the stages use every
    core; ``false`` runs the whole hub in one process."""
    ingest_token: SecretStr | None = None
    """Bearer token of ``POST /ingest/v1/{source}/{entity}`` on ``listen``, for systems that
    publish themselves over HTTP; write ``env:VAR``. Without one the endpoint is off."""
    ingest_max_records: int = Field(default=5_000, ge=1, le=100_000)
    """Records one ingest request may carry; more is refused with 413."""
    ingest_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """Body size one ingest request may have; more is refused with 413."""
    drain_seconds: float = Field(default=30.0, ge=0.0, le=600.0)
    """On the embedded broker, how long a stop (SIGTERM/SIGINT) waits for what the topics
    already hold to be stored: that broker forgets it, and records a system published
    itself have no checkpoint to be pulled again from. ``0`` stops at once; a second
    signal too."""
    dashboard_sample_seconds: float = Field(default=10.0, gt=0, le=600)
    """How often the dashboard's last-hour charts take a point."""
    source_silent_seconds: float = Field(default=300.0, gt=0)
    """A source without a successful pull for this long is reported unhealthy, even
    while its polls have not failed yet (a hung request, a stuck thread)."""
    merge_processes: int = Field(default=2, ge=0, le=64)
    """With ``ingest_process``: merge processes sharing the partitions of ``person`` (at
    most ``kafka.partitions`` do work); their rows reach this process's sink over the
    ``rows`` topic. ``0`` merges in this process."""


class KafkaConfig(_Section):
    """``[kafka]``: the broker the hub's topics live on."""

    bootstrap: str = EMBEDDED
    """``embedded`` starts the bundled Tansu broker; else ``host:port,host:port``."""
    partitions: int = Field(default=4, ge=1, le=256)
    """Partitions of the hub's keyed topics (the unit of parallelism)."""
    topic_prefix: str = "gridhub"
    """Every topic the hub creates starts with this."""
    group_id: str = "gridhub"
    """Consumer group shared by every ``gridhub run`` process of one deployment."""

    @property
    def embedded(self) -> bool:
        """True when the bundled broker is to be started."""
        return self.bootstrap == EMBEDDED


class ClickHouseConfig(_Section):
    """``[clickhouse]``: the store downstream teams query."""

    url: str = Field(default=EMBEDDED, repr=False)
    """``embedded`` opens chdb in ``data_dir``; else ``http://user:password@host:8123/grid``."""
    serve: str = "127.0.0.1:8123"
    """Embedded only: where the store's ClickHouse HTTP interface listens."""
    database: str = "grid"
    """Database of the contract tables (``outputs.md``)."""
    batch_rows: int = Field(default=20_000, ge=1)
    """The sink inserts when this many rows are waiting..."""
    batch_seconds: float = Field(default=0.5, gt=0)
    """...or when the oldest waiting row is this old."""
    area_refresh_seconds: float = Field(default=5.0, gt=0)
    """``grid.area`` is recomputed at most this often while rows are being stored..."""
    area_max_age_seconds: float = Field(default=600.0, gt=0)
    """...and at least this often, because its 30-day windows move with the clock."""

    @property
    def embedded(self) -> bool:
        """True when the store is the in-process chdb engine."""
        return self.url == EMBEDDED


class RegistryConfig(_Section):
    """``[registry]``: the schema registry that holds the raw topics' subjects."""

    url: str = Field(default=EMBEDDED, repr=False)
    """``embedded`` serves the hub's own registry on ``serve``; else the URL of a
    Confluent-compatible registry, ``http://user:env:REGISTRY_PW@host:8081``."""
    serve: str = "127.0.0.1:8081"
    """Embedded only: where the registry listens (loopback only; port 0 picks a free one)."""
    timeout_seconds: float = Field(default=5.0, gt=0)
    """A registry call slower than this counts as unreachable and is retried."""

    @property
    def embedded(self) -> bool:
        """True when the hub serves the registry itself."""
        return self.url == EMBEDDED


class ReferenceConfig(_Section):
    """``[reference]``: the unified grid map."""

    dir: Path = Path("./reference")
    """Folder with grids.csv, addresses.csv and crosswalk.csv."""


class PartySourceConfig(_Section):
    """``[sources.party]``: the party-building REST API."""

    base_url: str
    token: SecretStr
    """Bearer token; write ``env:PARTY_TOKEN``."""
    poll_seconds: float = Field(default=5.0, gt=0)
    """Pause between pulls once caught up."""
    page_size: int = Field(default=500, ge=1, le=500)
    """``limit`` of each page (the API allows 1..500)."""
    max_requests_per_second: float = Field(default=10.0, gt=0, le=18)
    """This hub's own limit, below the API's 20 per token (pacing at the very limit meets
    429s as soon as two requests bunch up)."""
    timeout_seconds: float = Field(default=20.0, gt=0)
    """A request slower than this is abandoned and retried (the API can take 30 s)."""
    lookback_seconds: float = Field(default=0.0, ge=0)
    """How far before the newest ``updatedAt`` each pull starts again (``updated_since`` is
    inclusive, so 0 already reads the boundary again)."""


class PolledTablesConfig(_Section):
    """What every source read from database tables by their update stamp shares."""

    poll_seconds: float = Field(default=2.0, gt=0)
    """Pause between polls once caught up."""
    lookback_seconds: float = Field(default=60.0, ge=0)
    """How far behind the newest update stamp each poll looks again, for rows committed
    late (by a transaction longer than this, a row would be missed)."""
    batch_rows: int = Field(default=500, ge=1, le=10_000)
    """Rows per query page and per published batch."""


class PoliceSourceConfig(PolledTablesConfig):
    """``[sources.police]``: the public-security MySQL/MariaDB database."""

    dsn: SecretStr
    """``mysql://reader:env:POLICE_PW@host:3306/ga_rkxx``."""


class CivilSourceConfig(PolledTablesConfig):
    """``[sources.civil]``: the civil-affairs PostgreSQL table and roster folder."""

    dsn: SecretStr
    """``postgresql://reader:env:CIVIL_PW@host:5432/mz``."""
    roster_dir: Path | None = None
    """Folder the clerks drop monthly rosters into (read only, never changed)."""


class HotlineSourceConfig(_Section):
    """``[sources.hotline]``: the 12345 hotline's signed REST API."""

    base_url: str
    app_key: str
    app_secret: SecretStr
    """HMAC key; write ``env:HOTLINE_SECRET``."""
    poll_seconds: float = Field(default=10.0, gt=0)
    """Pause between pulls once caught up."""
    page_size: int = Field(default=200, ge=1, le=200)
    """``pageSize`` of each page (the API allows 1..200)."""
    lookback_seconds: float = Field(default=180.0, ge=0)
    """How far before the newest ``updateTime`` each pull starts again; tickets reach the
    API up to 2 minutes after their ``updateTime``, so keep it above 120."""
    backfill_days: int = Field(default=30, ge=1, le=3650)
    """On the first start, how far back to pull."""
    max_requests_per_second: float = Field(default=10.0, gt=0, le=18)
    """This hub's own limit, below the platform's 20 per app key (pacing at the very limit
    meets 429s as soon as two requests bunch up)."""
    timeout_seconds: float = Field(default=20.0, gt=0)
    """A request slower than this is abandoned and retried (the API can take 30 s)."""
    clock_offset_seconds: float = 0.0
    """Added to this machine's clock when signing, for a platform whose clock is off; the
    platform refuses a timestamp more than 300 s from its own."""


class SourcesConfig(_Section):
    """``[sources.*]``: a source that is not configured is not pulled."""

    party: PartySourceConfig | None = None
    police: PoliceSourceConfig | None = None
    civil: CivilSourceConfig | None = None
    hotline: HotlineSourceConfig | None = None

    def configured(self) -> list[str]:
        """Names of the configured sources."""
        return [name for name in ("party", "police", "civil", "hotline") if getattr(self, name)]


_SECRET_KEYS = {
    ("hub", "pseudonym_key"),
    ("hub", "ingest_token"),
    ("sources", "party", "token"),
    ("sources", "hotline", "app_secret"),
}
_DSN_KEYS = {
    ("clickhouse", "url"),
    ("registry", "url"),
    ("sources", "police", "dsn"),
    ("sources", "civil", "dsn"),
}

_toml_path: ContextVar[Path | None] = ContextVar("gridhub_toml_path", default=None)


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the file named by :func:`load_settings`, resolving secrets and paths."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is used instead

    def __call__(self) -> dict[str, Any]:
        path = _toml_path.get()
        if path is None or not path.exists():
            return {}
        try:
            with path.open("rb") as handle:
                return tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


PERSON_RECORDS = (
    "police:syrk",
    "party:members",
    "civil:jzdx",
    "civil:roster_elderly",
    "civil:roster_disability",
)
"""Records about a person: the only ones whose phone or address may become a resident's."""
EVIDENCE_RECORDS = ("hotline:tickets", "police:jq")
"""Records that only name a person (a caller, a reporter): evidence for identity fields."""


class SurvivorshipConfig(_Section):
    """``[survivorship]``: which records win a field, best first, as ``source:entity``.

    Left out, a list is identity.md's default table (``streams/merge_resident.py``
    ``DEFAULT_POLICY``); a record left out of a list never wins that field.
    """

    identity: tuple[str, ...] | None = None
    """Name, gender and birth date (the ID number itself is the last resort)."""
    address: tuple[str, ...] | None = None
    """Residence address, and so the grid."""
    phone: tuple[str, ...] | None = None
    """Timed phone observations: the newest among these wins."""
    phone_untimed: tuple[str, ...] | None = None
    """Phones without a time (rosters), used only when no timed one exists."""

    @field_validator("identity")
    @classmethod
    def _identity(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _records(value, PERSON_RECORDS + EVIDENCE_RECORDS)

    @field_validator("address", "phone", "phone_untimed")
    @classmethod
    def _person_only(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _records(value, PERSON_RECORDS)

    def overrides(self) -> dict[str, tuple[str, ...]]:
        """The lists this deployment sets."""
        return {name: value for name, value in self.model_dump().items() if value is not None}


def _records(value: tuple[str, ...] | None, allowed: tuple[str, ...]) -> tuple[str, ...] | None:
    if value is None:
        return None
    unknown = [name for name in value if name not in allowed]
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)} cannot win this field; use some of {', '.join(allowed)} "
            "(a ticket's or an incident's phone and address are never a resident's)"
        )
    if len(set(value)) != len(value):
        raise ValueError("a record is named twice")
    return value


class GridhubSettings(BaseSettings):
    """Everything the hub is told: one model, one place."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    hub: HubConfig = HubConfig()
    kafka: KafkaConfig = KafkaConfig()
    clickhouse: ClickHouseConfig = ClickHouseConfig()
    registry: RegistryConfig = RegistryConfig()
    reference: ReferenceConfig = ReferenceConfig()
    sources: SourcesConfig = SourcesConfig()
    survivorship: SurvivorshipConfig = SurvivorshipConfig()
    config_path: Path | None = Field(default=None, exclude=True)
    """Where the configuration was read from (set by :func:`load_settings`)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _TomlSource(settings_cls)

    @field_validator("hub", "clickhouse", "registry", "reference", "sources", mode="before")
    @classmethod
    def _resolve_secrets(cls, value: Any, info: Any) -> Any:
        if isinstance(value, dict):
            return _resolve_tree(value, (info.field_name,))
        return value

    @property
    def base_dir(self) -> Path:
        """Folder relative paths are resolved against."""
        return self.config_path.parent if self.config_path else Path.cwd()

    def path(self, value: Path) -> Path:
        """``value`` made absolute against the configuration file's folder."""
        return value if value.is_absolute() else (self.base_dir / value).resolve()

    @property
    def data_dir(self) -> Path:
        """The hub's own folder, absolute."""
        return self.path(self.hub.data_dir)


def _resolve_tree(tree: dict[str, Any], prefix: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        here = (*prefix, key)
        if isinstance(value, dict):
            out[key] = _resolve_tree(value, here)
        elif isinstance(value, str) and here in _SECRET_KEYS:
            out[key] = resolve_secret(value, key=".".join(here))
        elif isinstance(value, str) and here in _DSN_KEYS:
            out[key] = resolve_dsn_secret(value, key=".".join(here))
        else:
            out[key] = value
    return out


def _describe(error: Any) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "missing":
        return f"{loc}: required key is missing"
    if kind == "extra_forbidden":
        return f"{loc}: unknown key (check its spelling against the documented keys)"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if kind == "value_error":
        return message
    if tuple(str(part) for part in error["loc"]) in _SECRET_KEYS | _DSN_KEYS:
        return f"{loc}: {message}"  # never echo what may be a secret
    return f"{loc}: {message} (got {error.get('input')!r})"


def load_settings(path: Path | str | None = None) -> GridhubSettings:
    """Read ``gridhub.toml`` (default ``./gridhub.toml``) plus environment overrides.

    Raises:
        ConfigError: naming every wrong or missing key and what was expected.
    """
    config_path = Path(path) if path is not None else Path("gridhub.toml")
    if path is not None and not config_path.exists():
        raise ConfigError(f"configuration file {config_path} does not exist")
    token = _toml_path.set(config_path)
    try:
        return GridhubSettings(config_path=config_path.resolve())
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors()]
        raise ConfigError(f"{config_path}: " + "; ".join(lines)) from None
    except ValueError as exc:
        raise ConfigError(f"{config_path}: {exc}") from None
    finally:
        _toml_path.reset(token)
