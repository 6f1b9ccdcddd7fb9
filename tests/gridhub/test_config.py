"""One gridhub.toml plus GRIDHUB_* overrides, secrets resolved and never shown (operations.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gridhub.config import GridhubSettings, load_settings, redact_dsn
from gridhub.errors import ConfigError, GridhubError, Terminal

POLICE_PW = "Pw@1/x:y"
PARTY_TOKEN = "party-token-5f2c9a"
HOTLINE_SECRET = "hotline-hmac-77e1b0"
CH_PW = "clickhouse-pw-31d8"

FULL = """
[hub]
data_dir = "data"

[kafka]
partitions = 8

[reference]
dir = "ref"

[sources.party]
base_url = "https://dj.example.gov.cn"
token = "env:PARTY_TOKEN"

[sources.police]
dsn = "mysql://reader:env:POLICE_PW@10.0.0.5:3306/ga_rkxx"
lookback_seconds = 30

[sources.civil]
dsn = "postgresql://reader@10.0.0.6:5432/mz"
roster_dir = "/mnt/mz-inbox"

[sources.hotline]
base_url = "https://12345.example.gov.cn"
app_key = "county-320723"
app_secret = "env:HOTLINE_SECRET"
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No GRIDHUB_* variable of the calling shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("GRIDHUB_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def secrets_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICE_PW", POLICE_PW)
    monkeypatch.setenv("PARTY_TOKEN", PARTY_TOKEN)
    monkeypatch.setenv("HOTLINE_SECRET", HOTLINE_SECRET)
    monkeypatch.setenv("CH_PW", CH_PW)


def write(directory: Path, text: str, name: str = "gridhub.toml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value)


def test_file_values_and_documented_defaults(tmp_path: Path, secrets_set: None) -> None:
    settings = load_settings(write(tmp_path, FULL))
    assert settings.kafka.partitions == 8
    assert settings.kafka.embedded and settings.clickhouse.embedded
    assert settings.hub.listen == "127.0.0.1:8080"
    assert settings.clickhouse.serve == "127.0.0.1:8123"
    assert settings.clickhouse.database == "grid"
    assert settings.sources.configured() == ["party", "police", "civil", "hotline"]
    police = settings.sources.police
    assert police is not None and police.lookback_seconds == 30.0
    assert settings.config_path == (tmp_path / "gridhub.toml").resolve()


def test_an_empty_file_configures_no_source(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    assert settings.sources.configured() == []
    assert settings.data_dir == (tmp_path / "gridhub-data").resolve()


def test_environment_overrides_win_over_the_file(
    tmp_path: Path, secrets_set: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDHUB_KAFKA__PARTITIONS", "3")
    monkeypatch.setenv("GRIDHUB_KAFKA__BOOTSTRAP", "broker1:9092,broker2:9092")
    monkeypatch.setenv("GRIDHUB_SOURCES__POLICE__LOOKBACK_SECONDS", "5")
    monkeypatch.setenv("GRIDHUB_SOURCES__HOTLINE__APP_KEY", "county-other")
    settings = load_settings(write(tmp_path, FULL))
    assert settings.kafka.partitions == 3
    assert settings.kafka.bootstrap == "broker1:9092,broker2:9092"
    assert not settings.kafka.embedded
    police, hotline = settings.sources.police, settings.sources.hotline
    assert police is not None and hotline is not None
    assert police.lookback_seconds == 5.0
    # keys of the same section that were not overridden keep the file's values
    assert police.dsn.get_secret_value().startswith("mysql://reader:")
    assert hotline.app_key == "county-other"
    assert hotline.base_url == "https://12345.example.gov.cn"


def test_environment_alone_can_configure_a_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDHUB_SOURCES__CIVIL__DSN", "postgresql://reader@10.0.0.6:5432/mz")
    settings = load_settings(write(tmp_path, ""))
    assert settings.sources.configured() == ["civil"]


def test_env_secrets_are_resolved_for_tokens_and_dsn_passwords(
    tmp_path: Path, secrets_set: None
) -> None:
    settings = load_settings(write(tmp_path, FULL))
    party, hotline, police = (
        settings.sources.party,
        settings.sources.hotline,
        settings.sources.police,
    )
    assert party is not None and hotline is not None and police is not None
    assert party.token.get_secret_value() == PARTY_TOKEN
    assert hotline.app_secret.get_secret_value() == HOTLINE_SECRET
    dsn = urlsplit(police.dsn.get_secret_value())
    # the password is percent-encoded so that '@', '/' and ':' keep the DSN parseable
    assert (dsn.scheme, dsn.username, dsn.password) == ("mysql", "reader", "Pw%401%2Fx%3Ay")
    assert (dsn.hostname, dsn.port, dsn.path) == ("10.0.0.5", 3306, "/ga_rkxx")


def test_a_dsn_without_password_is_kept_as_written(tmp_path: Path, secrets_set: None) -> None:
    settings = load_settings(write(tmp_path, FULL))
    assert settings.sources.civil is not None
    assert settings.sources.civil.dsn.get_secret_value() == "postgresql://reader@10.0.0.6:5432/mz"


def test_an_env_secret_given_through_an_override_is_resolved(
    tmp_path: Path, secrets_set: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROTATED_TOKEN", "rotated-9a")
    monkeypatch.setenv("GRIDHUB_SOURCES__PARTY__TOKEN", "env:ROTATED_TOKEN")
    settings = load_settings(write(tmp_path, FULL))
    assert settings.sources.party is not None
    assert settings.sources.party.token.get_secret_value() == "rotated-9a"


@pytest.mark.parametrize(
    ("missing", "key"),
    [
        ("PARTY_TOKEN", "sources.party.token"),
        ("HOTLINE_SECRET", "sources.hotline.app_secret"),
        ("POLICE_PW", "sources.police.dsn"),
    ],
)
def test_a_missing_secret_variable_names_the_key_and_the_variable(
    tmp_path: Path, secrets_set: None, monkeypatch: pytest.MonkeyPatch, missing: str, key: str
) -> None:
    monkeypatch.delenv(missing)
    message = config_error(write(tmp_path, FULL))
    assert key in message
    assert missing in message
    assert "not set" in message


def test_an_unknown_key_is_reported_with_its_dotted_name(tmp_path: Path) -> None:
    text = '[kafka]\npartitons = 3\n[sources.civil]\ndsn = "postgresql://h/mz"\nrosterdir = "x"\n'
    message = config_error(write(tmp_path, text))
    assert "kafka.partitons: unknown key" in message
    assert "sources.civil.rosterdir: unknown key" in message


def test_an_unknown_key_from_the_environment_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDHUB_HUB__DATA_DIRR", "/srv")
    assert "hub.data_dirr: unknown key" in config_error(write(tmp_path, ""))


def test_a_wrong_type_names_the_key_and_what_was_expected(tmp_path: Path) -> None:
    text = '[kafka]\npartitions = "many"\n[clickhouse]\nbatch_seconds = 0\n'
    message = config_error(write(tmp_path, text))
    assert "kafka.partitions: Input should be a valid integer" in message
    assert "'many'" in message
    assert "clickhouse.batch_seconds: Input should be greater than 0" in message


def test_a_missing_required_key_in_a_configured_source(tmp_path: Path) -> None:
    text = '[sources.hotline]\nbase_url = "https://12345.example.gov.cn"\n[sources.police]\n'
    message = config_error(write(tmp_path, text))
    assert "sources.hotline.app_key: required key is missing" in message
    assert "sources.hotline.app_secret: required key is missing" in message
    assert "sources.police.dsn: required key is missing" in message


def test_invalid_toml_and_a_missing_file_are_config_errors(tmp_path: Path) -> None:
    assert "not valid TOML" in config_error(write(tmp_path, "[hub\n"))
    assert "does not exist" in config_error(tmp_path / "absent.toml")


def test_config_error_is_a_terminal_gridhub_error() -> None:
    assert issubclass(ConfigError, GridhubError)
    assert issubclass(ConfigError, Terminal)


def test_relative_paths_are_resolved_against_the_config_file(
    tmp_path: Path, secrets_set: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(write(folder, FULL))
    assert settings.data_dir == folder.resolve() / "data"
    assert settings.path(settings.reference.dir) == folder.resolve() / "ref"
    assert settings.sources.civil is not None and settings.sources.civil.roster_dir is not None
    assert settings.path(settings.sources.civil.roster_dir) == Path("/mnt/mz-inbox")


def test_without_a_file_the_current_folder_is_the_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.sources.configured() == []
    assert settings.data_dir == tmp_path.resolve() / "gridhub-data"


def test_secrets_never_appear_in_the_repr(tmp_path: Path, secrets_set: None) -> None:
    settings = load_settings(write(tmp_path, FULL))
    shown = repr(settings) + str(settings)
    for secret in (POLICE_PW, PARTY_TOKEN, HOTLINE_SECRET, "Pw%401"):
        assert secret not in shown


def test_secrets_never_appear_in_a_config_error(
    tmp_path: Path, secrets_set: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOTLINE_SECRET")
    text = FULL.replace("partitions = 8", "partitions = 0")
    message = config_error(write(tmp_path, text))
    assert "kafka.partitions" in message and "HOTLINE_SECRET" in message
    for secret in (POLICE_PW, PARTY_TOKEN, "Pw%401"):
        assert secret not in message


def test_a_clickhouse_password_never_appears_in_the_repr(tmp_path: Path, secrets_set: None) -> None:
    text = '[clickhouse]\nurl = "http://writer:env:CH_PW@10.0.0.7:8123/grid"\n'
    settings = load_settings(write(tmp_path, text))
    assert urlsplit(settings.clickhouse.url).password == CH_PW
    assert CH_PW not in repr(settings)


def test_a_registry_password_is_resolved_and_never_in_the_repr(
    tmp_path: Path, secrets_set: None
) -> None:
    settings = load_settings(write(tmp_path, ""))
    assert settings.registry.embedded and settings.registry.serve == "127.0.0.1:8081"
    text = '[registry]\nurl = "http://hub:env:CH_PW@registry:8081"\n'
    settings = load_settings(write(tmp_path, text))
    assert not settings.registry.embedded
    assert urlsplit(settings.registry.url).password == CH_PW
    assert CH_PW not in repr(settings)


def test_a_wrongly_typed_secret_is_not_echoed_in_the_error(tmp_path: Path) -> None:
    text = '[sources.party]\nbase_url = "https://dj.example.gov.cn"\ntoken = 918273645546372\n'
    message = config_error(write(tmp_path, text))
    assert "sources.party.token" in message
    assert "918273645546372" not in message


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    with pytest.raises(ValueError, match="frozen"):
        settings.kafka.partitions = 2
    assert isinstance(settings, GridhubSettings)


@pytest.mark.parametrize(
    ("dsn", "redacted"),
    [
        (
            "mysql://reader:s3cret@10.0.0.5:3306/ga_rkxx",
            "mysql://reader:***@10.0.0.5:3306/ga_rkxx",
        ),
        (
            "http://default:p%40ss@ch.example:8123/grid?x=1",
            "http://default:***@ch.example:8123/grid?x=1",
        ),
        ("postgresql://reader:pw@10.0.0.6/mz", "postgresql://reader:***@10.0.0.6/mz"),
        ("postgresql://reader@10.0.0.6:5432/mz", "postgresql://reader@10.0.0.6:5432/mz"),
        ("embedded", "embedded"),
    ],
)
def test_redact_dsn_hides_only_the_password(dsn: str, redacted: str) -> None:
    assert redact_dsn(dsn) == redacted


def test_dsn_helpers_keep_an_ipv6_host_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert redact_dsn("postgresql://reader:pw@[fd00::6]:5432/mz") == (
        "postgresql://reader:***@[fd00::6]:5432/mz"
    )
    monkeypatch.setenv("CIVIL_PW", "pw")
    text = '[sources.civil]\ndsn = "postgresql://reader:env:CIVIL_PW@[fd00::6]:5432/mz"\n'
    settings = load_settings(write(tmp_path, text))
    assert settings.sources.civil is not None
    parts = urlsplit(settings.sources.civil.dsn.get_secret_value())
    assert (parts.hostname, parts.port, parts.password) == ("fd00::6", 5432, "pw")


def test_survivorship_lists_replace_the_defaults_they_name(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, '[survivorship]\nidentity = ["party:members", "police:syrk"]\n')
    )
    assert settings.survivorship.overrides() == {"identity": ("party:members", "police:syrk")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('phone = ["hotline:tickets"]', "hotline:tickets cannot win this field"),
        ('address = ["police:jq", "police:syrk"]', "never a resident's"),
        ('identity = ["police:syrk", "police:syrk"]', "named twice"),
        ('identity = ["police:rkxx"]', "police:rkxx cannot win"),
    ],
)
def test_a_survivorship_list_naming_what_cannot_win_is_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    error = config_error(write(tmp_path, f"[survivorship]\n{text}\n"))
    assert "survivorship" in error and message in error
