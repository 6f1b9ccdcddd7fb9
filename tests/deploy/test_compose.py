"""Checks the production deployment files without a Docker engine.

No Docker daemon runs where the tests run, so ``docker compose config`` cannot
be relied on. Instead the compose file is read with PyYAML (anchors and merge
keys resolved the way compose resolves them), the hub configuration with
tomllib and the Dockerfile line by line, and every check compares the files
with each other: the hub's configuration must point at the services compose
defines, the paths it names must be the paths compose mounts, and every secret
it references must be passed in from the operator's environment.
"""

from __future__ import annotations

import ast
import base64
import fnmatch
import json
import os
import re
import shlex
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gridhub.config import ENV_PREFIX, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY_README = ROOT / "deploy" / "README.md"
HUB_DOCKERFILE = "deploy/Dockerfile"

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_PW$|_KEY$")
INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:\?|\?|:-|-)?(?P<arg>[^}]*)\}"
)
EXACT_TAG = re.compile(r"^\d+\.\d+\.\d+(?:\.\d+)?(?:-[a-z0-9][a-z0-9.\-]*)?$")
SHORT_VOLUME = re.compile(r"(?P<source>\$\{[^}]*\}|[^:]+):(?P<target>[^:]+)(?::(?P<mode>.*))?")
ENV_REFERENCE = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)")
REQUIRED_SOURCES = {"party", "police", "civil", "hotline"}
HUB_SECRETS = {"PSEUDONYM_KEY", "PARTY_TOKEN", "POLICE_PW", "HOTLINE_SECRET", "CLICKHOUSE_PASSWORD"}


@dataclass(frozen=True)
class Mount:
    """One entry of a service's ``volumes``, short or long syntax alike."""

    kind: str
    source: str
    target: str
    read_only: bool


def split_image(reference: str) -> tuple[str, str]:
    """Splits ``name[:tag]`` into name and tag; the tag is empty when missing."""
    last_slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon <= last_slash:
        return reference, ""
    return reference[:colon], reference[colon + 1 :]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as strings, from either the mapping or the list form."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return {key: value for key, _, value in (str(item).partition("=") for item in raw)}
    return {str(key): "" if value is None else str(value) for key, value in raw.items()}


def mounts(service: dict[str, Any]) -> list[Mount]:
    """A service's volumes, normalised so both compose syntaxes compare equal."""
    result = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, str):
            short = SHORT_VOLUME.fullmatch(entry)
            assert short, f"unreadable volume entry {entry!r}"
            source, target, mode = short["source"], short["target"], short["mode"] or ""
            kind = "bind" if source.startswith((".", "/", "~", "$")) else "volume"
            result.append(Mount(kind, source, target, "ro" in mode.split(",")))
        else:
            result.append(
                Mount(
                    entry["type"],
                    str(entry["source"]),
                    entry["target"],
                    bool(entry.get("read_only", False)),
                )
            )
    return result


def command(service: dict[str, Any]) -> list[str]:
    """A service's command as an argument list, from either the list or the string form."""
    raw = service.get("command")
    if isinstance(raw, str):
        return shlex.split(raw)
    return [str(item) for item in raw or []]


def healthcheck_text(service: dict[str, Any]) -> str:
    """The health check's command as one string, whatever form it was written in."""
    test = (service.get("healthcheck") or {}).get("test")
    return test if isinstance(test, str) else " ".join(str(item) for item in test or [])


def published(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host part, container port) for each published port in short syntax."""
    result = []
    for entry in service.get("ports") or []:
        host, _, container = str(entry).rpartition(":")
        result.append((host, int(container.split("/")[0])))
    return result


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending = f"{pending} {stripped}" if pending else stripped
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def setup_folders() -> list[str]:
    """The top-level folders setup.py maps onto the gridhub distribution."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "FOLDERS" for target in node.targets
        ):
            folders = ast.literal_eval(node.value)
            assert isinstance(folders, list)
            return [str(folder) for folder in folders]
    raise AssertionError("setup.py no longer defines FOLDERS")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = compose["services"]
    assert isinstance(result, dict)
    return result


@pytest.fixture(scope="module")
def hubs(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in services.items()
        if isinstance(service.get("build"), dict)
        and service["build"].get("dockerfile") == HUB_DOCKERFILE
    }


@pytest.fixture(scope="module")
def config_mount(hubs: dict[str, dict[str, Any]]) -> Mount:
    """The single configuration file both hubs mount (asserted in its own test)."""
    for hub in hubs.values():
        for mount in mounts(hub):
            if mount.target in command(hub):
                return mount
    raise AssertionError("no hub mounts the file its --config names")


@pytest.fixture(scope="module")
def hub_config(config_mount: Mount) -> dict[str, Any]:
    with (ROOT / config_mount.source).open("rb") as handle:
        return tomllib.load(handle)


def test_compose_file_parses_with_the_stack_services(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the top-level version key is obsolete in compose v2"
    assert {"kafka", "clickhouse"} <= set(compose["services"])


def test_every_image_is_pinned_to_an_exact_version(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name} names no image"
        _, tag = split_image(image.split("@")[0])
        assert tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} floats on latest"
        assert EXACT_TAG.match(tag), f"{name}: {image} is not pinned to an exact version"


def test_hub_image_tag_is_the_project_version(hubs: dict[str, dict[str, Any]]) -> None:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        version = tomllib.load(handle)["project"]["version"]
    for name, hub in hubs.items():
        assert split_image(hub["image"]) == ("gridhub", version), name


def test_kafka_is_a_39_kraft_combined_node(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    image, tag = split_image(kafka["image"])
    assert image == "apache/kafka"
    assert tag.startswith("3.9."), "faust is only trusted here against Kafka 3.9 (deploy/README.md)"
    for name, service in services.items():
        assert "zookeeper" not in name.lower()
        assert "zookeeper" not in str(service.get("image", "")).lower()
    env = environment(kafka)
    assert not any("ZOOKEEPER" in key for key in env)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16, "CLUSTER_ID is no UUID"

    listeners = {
        item.split("://")[0]: int(item.rsplit(":", 1)[1])
        for item in env["KAFKA_LISTENERS"].split(",")
    }
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners) <= set(protocols)
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller in listeners
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in listeners

    voter_id, _, voter_address = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    voter_host, _, voter_port = voter_address.partition(":")
    assert voter_id == env["KAFKA_NODE_ID"]
    assert voter_host in {"kafka", kafka.get("hostname")}
    assert int(voter_port) == listeners[controller]

    advertised = env["KAFKA_ADVERTISED_LISTENERS"]
    assert controller not in advertised, "a controller listener is never advertised to clients"
    name, _, address = advertised.partition("://")
    assert name in listeners
    assert address == f"kafka:{listeners[name]}"


def test_kafka_single_broker_settings(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    env = environment(kafka)
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_DEFAULT_REPLICATION_FACTOR",
    ):
        assert env[key] == "1", key
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "auto.create.topics.enable" in DEPLOY_README.read_text(encoding="utf-8")
    volumes = {m.target: m for m in mounts(kafka) if m.kind == "volume"}
    assert env["KAFKA_LOG_DIRS"] in volumes, "the broker's log dirs must live on a named volume"
    probe = healthcheck_text(kafka)
    assert "kafka-broker-api-versions.sh" in probe
    assert "--bootstrap-server localhost:9092" in probe


def test_clickhouse_server_is_pinned_lts_with_access_management(
    services: dict[str, dict[str, Any]],
) -> None:
    clickhouse = services["clickhouse"]
    image, tag = split_image(clickhouse["image"])
    assert image == "clickhouse/clickhouse-server"
    major, minor = (int(part) for part in tag.split(".")[:2])
    assert major == 25 and minor in {3, 8}, "25.3 and 25.8 are the 25.x LTS lines"
    env = environment(clickhouse)
    assert env["CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"] == "1"
    assert env["CLICKHOUSE_USER"] not in {"", "default"}
    assert env["CLICKHOUSE_DB"]
    assert any(m.kind == "volume" and m.target == "/var/lib/clickhouse" for m in mounts(clickhouse))
    nofile = clickhouse["ulimits"]["nofile"]
    assert nofile["soft"] >= 262144 and nofile["hard"] >= 262144
    probe = healthcheck_text(clickhouse)
    assert "8123/ping" in probe or "SELECT 1" in probe
    assert [port for _, port in published(clickhouse)] == [8123]


def test_clickhouse_config_files_exist_and_name_mounted_paths(
    services: dict[str, dict[str, Any]],
) -> None:
    clickhouse = services["clickhouse"]
    binds = [m for m in mounts(clickhouse) if m.kind == "bind"]
    assert binds, "the server settings in deploy/clickhouse are not mounted"
    volume_targets = {m.target.rstrip("/") for m in mounts(clickhouse) if m.kind == "volume"}
    for mount in binds:
        assert mount.read_only, mount
        assert mount.target.startswith("/etc/clickhouse-server/config.d/"), mount
        path = ROOT / mount.source
        assert path.is_file(), mount.source
        root = ET.parse(path).getroot()
        assert root.tag == "clickhouse"
        for disk_path in root.iterfind("storage_configuration/disks/*/path"):
            assert (disk_path.text or "").rstrip("/") in volume_targets, disk_path.text


def test_hub_runs_in_exactly_two_replicas_sharing_one_config(
    hubs: dict[str, dict[str, Any]],
) -> None:
    assert len(hubs) == 2, f"expected two hub services, found {sorted(hubs)}"
    config_mounts: set[Mount] = set()
    data_volumes: set[str] = set()
    host_ports: set[str] = set()
    for name, hub in hubs.items():
        assert hub["build"]["context"] == ".", name
        replicas = (hub.get("deploy") or {}).get("replicas", 1)
        assert replicas == 1, f"{name} must be one process; replicas are separate services"
        argv = command(hub)
        assert argv[:2] == ["run", "--config"] and len(argv) == 3, argv
        config = [m for m in mounts(hub) if m.target == argv[2]]
        assert len(config) == 1 and config[0].kind == "bind" and config[0].read_only, name
        config_mounts.add(config[0])
        data = [m for m in mounts(hub) if m.kind == "volume"]
        assert len(data) == 1, f"{name} needs exactly one named volume for its data_dir"
        data_volumes.add(data[0].source)
        host_ports.update(host for host, _ in published(hub))
    assert len(config_mounts) == 1, "both hubs must read the same configuration file"
    assert len(data_volumes) == 2, "each hub needs its own data volume"
    assert len(host_ports) == 2, "the hubs must publish on different host ports"


def test_every_service_has_a_healthcheck_and_a_restart_policy(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert healthcheck_text(service) not in {"NONE", ""}, name
        assert service.get("restart") in {"always", "unless-stopped"}, name


def test_every_named_volume_is_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    used = {m.source for s in services.values() for m in mounts(s) if m.kind == "volume"}
    declared = set(compose.get("volumes") or {})
    assert used == declared, f"used {sorted(used)}, declared {sorted(declared)}"


def test_hubs_wait_for_healthy_kafka_and_clickhouse(hubs: dict[str, dict[str, Any]]) -> None:
    for name, hub in hubs.items():
        depends = hub["depends_on"]
        assert isinstance(depends, dict), f"{name}: the list form cannot wait for health"
        for dependency in ("kafka", "clickhouse"):
            assert depends[dependency]["condition"] == "service_healthy", (name, dependency)


def test_no_literal_secrets_in_compose(services: dict[str, dict[str, Any]]) -> None:
    seen = 0
    for name, service in services.items():
        for key, value in environment(service).items():
            if not SECRET_NAME.search(key):
                continue
            seen += 1
            match = INTERPOLATION.fullmatch(value)
            assert match, f"{name}: {key} is a literal, not a ${{...}} reference"
            assert match["op"] == ":?", f"{name}: {key} must fail loudly when unset"
    assert seen >= len(HUB_SECRETS) + 1, (
        "the hub secrets and the server's password must be passed in"
    )


def test_hub_config_points_at_the_compose_services(
    hub_config: dict[str, Any],
    services: dict[str, dict[str, Any]],
    hubs: dict[str, dict[str, Any]],
) -> None:
    for address in hub_config["kafka"]["bootstrap"].split(","):
        host, _, port = address.partition(":")
        assert host in services, f"{address} is not a compose service"
        assert f"://{address}" in environment(services[host])["KAFKA_ADVERTISED_LISTENERS"]

    url = urlsplit(hub_config["clickhouse"]["url"])
    clickhouse_env = environment(services["clickhouse"])
    assert url.scheme == "http"
    assert url.hostname == "clickhouse" and url.hostname in services
    assert url.port == 8123
    assert url.username == clickhouse_env["CLICKHOUSE_USER"]
    assert url.password == "env:CLICKHOUSE_PASSWORD"
    assert url.path == f"/{clickhouse_env['CLICKHOUSE_DB']}"

    host, _, port = hub_config["hub"]["listen"].rpartition(":")
    assert host == "0.0.0.0", "inside a container the hub must listen on every interface"
    for name, hub in hubs.items():
        assert [container for _, container in published(hub)] == [int(port)], name
        assert f"127.0.0.1:{port}/health" in healthcheck_text(hub), name


def test_hub_config_paths_are_the_mounted_paths(
    hub_config: dict[str, Any], hubs: dict[str, dict[str, Any]]
) -> None:
    for name, hub in hubs.items():
        by_target = {m.target: m for m in mounts(hub)}
        data_dir = by_target[hub_config["hub"]["data_dir"]]
        assert data_dir.kind == "volume" and not data_dir.read_only, name
        paths = [hub_config["reference"]["dir"]]
        if "civil" in hub_config["sources"]:
            paths.append(hub_config["sources"]["civil"]["roster_dir"])
        for path in paths:
            mount = by_target[path]
            assert mount.kind == "bind" and mount.read_only, (name, path)


def test_hub_config_keeps_secrets_out_and_passes_them_in(
    config_mount: Mount, hub_config: dict[str, Any], hubs: dict[str, dict[str, Any]]
) -> None:
    sources = hub_config["sources"]
    assert sources and set(sources) <= REQUIRED_SOURCES
    for name, key in (("party", "token"), ("hotline", "app_secret")):
        assert name not in sources or sources[name][key].startswith("env:"), (name, key)
    for name in ("police", "civil"):
        password = urlsplit(sources[name]["dsn"]).password if name in sources else None
        assert password is None or password.startswith("env:"), name
    referenced = set(ENV_REFERENCE.findall(json.dumps(hub_config)))
    assert referenced >= {"PSEUDONYM_KEY", "CLICKHOUSE_PASSWORD"}
    for name, hub in hubs.items():
        missing = referenced - set(environment(hub))
        assert not missing, f"{name} does not receive {sorted(missing)} ({config_mount.source})"


def test_shipped_config_names_all_four_sources(hub_config: dict[str, Any]) -> None:
    """The file ships with every source, each with its secret as env:NAME.

    A county that does not connect a system deletes its table (deploy/README.md);
    the other checks accept that, this one pins what the repository ships.
    """
    sources = hub_config["sources"]
    assert set(sources) == REQUIRED_SOURCES
    assert sources["party"]["token"] == "env:PARTY_TOKEN"
    assert urlsplit(sources["police"]["dsn"]).password == "env:POLICE_PW"
    assert sources["civil"]["roster_dir"]
    assert sources["hotline"]["app_secret"] == "env:HOTLINE_SECRET"
    assert set(ENV_REFERENCE.findall(json.dumps(hub_config))) == HUB_SECRETS


def test_both_hubs_share_one_pseudonym_key(
    hub_config: dict[str, Any], hubs: dict[str, dict[str, Any]]
) -> None:
    """Each hub has its own data_dir, so a key left to each hub would differ per process."""
    key = hub_config["hub"].get("pseudonym_key")
    assert isinstance(key, str) and key.startswith("env:"), "hub.pseudonym_key must be env:NAME"
    passed = {environment(hub).get(key[4:]) for hub in hubs.values()}
    assert len(passed) == 1, f"the hubs receive different {key[4:]} values: {passed}"
    match = INTERPOLATION.fullmatch(passed.pop() or "")
    assert match and match["op"] == ":?", f"{key[4:]} must come from .env and be required"


def test_hub_configuration_loads_with_the_hubs_own_loader(
    config_mount: Mount,
    hub_config: dict[str, Any],
    hubs: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [key for key in os.environ if key.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    passed = {
        name: f"{name.lower()}-0123456789abcdef"
        for hub in hubs.values()
        for name in environment(hub)
    }
    for name, value in passed.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(ROOT / config_mount.source)
    assert not settings.kafka.embedded and not settings.clickhouse.embedded
    assert not settings.registry.embedded
    assert set(settings.sources.configured()) == set(hub_config["sources"])
    assert settings.data_dir == Path(hub_config["hub"]["data_dir"])
    assert urlsplit(settings.clickhouse.url).password == passed["CLICKHOUSE_PASSWORD"]
    pseudonym_key = settings.hub.pseudonym_key
    assert pseudonym_key is not None
    assert pseudonym_key.get_secret_value() == passed["PSEUDONYM_KEY"]


def test_dockerfile_pins_its_base_and_installs_the_project_as_non_root() -> None:
    instructions = dockerfile_instructions()
    bases = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    assert len(bases) == 1
    image, tag = split_image(bases[0].split()[0])
    assert image == "python" and tag.startswith("3.11.") and "slim" in tag
    assert EXACT_TAG.match(tag), tag

    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    assert any(re.search(r"pip install --no-cache-dir \.(\s|$)", run) for run in runs), (
        "the project must be installed with pip install --no-cache-dir ."
    )

    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users, "the image would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}

    assert ("ENTRYPOINT", '["gridhub"]') in instructions
    cmd = [json.loads(arguments) for keyword, arguments in instructions if keyword == "CMD"]
    assert cmd[-1][:2] == ["run", "--config"]
    probe = " ".join(arguments for keyword, arguments in instructions if keyword == "HEALTHCHECK")
    assert "urllib" in probe and "http://127.0.0.1:8080/health" in probe


def test_dockerfile_default_command_matches_compose(hubs: dict[str, dict[str, Any]]) -> None:
    cmd = [
        json.loads(arguments)
        for keyword, arguments in dockerfile_instructions()
        if keyword == "CMD"
    ]
    for name, hub in hubs.items():
        assert command(hub) == cmd[-1], name


def test_dockerfile_copies_everything_pip_needs() -> None:
    copied: set[str] = set()
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY" and not arguments.startswith("--from"):
            copied.update(part.rstrip("/") for part in arguments.split()[:-1])
    with (ROOT / "pyproject.toml").open("rb") as handle:
        readme = tomllib.load(handle)["project"].get("readme")
    needed = {"pyproject.toml", "setup.py", *setup_folders()}
    if isinstance(readme, str):
        needed.add(readme)
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".git", ".venv", "gridhub-data", ".env", "**/__pycache__", ".mypy_cache"):
        assert required in patterns, required
    for keyword, arguments in dockerfile_instructions():
        if keyword != "COPY":
            continue
        for source in arguments.split()[:-1]:
            excluded = [p for p in patterns if not p.startswith("!") and fnmatch.fnmatch(source, p)]
            assert not excluded, f"{source} is copied but excluded by {excluded}"


def test_installed_package_ships_every_runtime_file() -> None:
    """``pip install .`` in the image must carry what the editable install sees.

    A sub-folder without ``__init__.py`` or a data file missing from
    package-data works in development and is silently absent in the image.
    """
    with (ROOT / "pyproject.toml").open("rb") as handle:
        package_data = tomllib.load(handle)["tool"]["setuptools"].get("package-data", {})
    not_shipped = []
    for folder in setup_folders():
        package_root = ROOT / folder
        base = "gridhub" if folder == "gridhub" else f"gridhub.{folder}"
        for path in sorted(package_root.rglob("*")):
            parts = path.relative_to(package_root).parts
            if any(part in {"__pycache__", "gridhub-data"} for part in parts) or path.is_dir():
                continue
            if path.suffix == ".py":
                for depth in range(1, len(parts)):
                    if not (package_root.joinpath(*parts[:depth]) / "__init__.py").is_file():
                        not_shipped.append(str(path.relative_to(ROOT)))
                        break
                continue
            if path.suffix in {".pyc", ".md"} or path.name == "py.typed":
                continue
            depth = len(parts) - 1
            while depth and not (package_root.joinpath(*parts[:depth]) / "__init__.py").is_file():
                depth -= 1
            package = ".".join([base, *parts[:depth]])
            inside = "/".join(parts[depth:])
            patterns = [*package_data.get(package, []), *package_data.get("*", [])]
            if not any(fnmatch.fnmatch(inside, pattern) for pattern in patterns):
                not_shipped.append(str(path.relative_to(ROOT)))
    assert not not_shipped, f"missing from a non-editable install: {not_shipped}"


def test_deploy_readme_documents_every_variable_compose_reads() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    guide = DEPLOY_README.read_text(encoding="utf-8")
    names = {match["name"] for match in INTERPOLATION.finditer(text)}
    assert {"PSEUDONYM_KEY", "CLICKHOUSE_PASSWORD", "PUBLISH_ADDR"} <= names
    undocumented = sorted(name for name in names if name not in guide)
    assert not undocumented, f"deploy/README.md does not explain {undocumented}"


def test_schema_registry_is_confluents_on_the_kraft_broker(
    services: dict[str, dict[str, Any]], hubs: dict[str, dict[str, Any]]
) -> None:
    registry = services["schema-registry"]
    image, tag = split_image(registry["image"])
    assert image == "confluentinc/cp-schema-registry"
    assert tag.startswith("7.9."), "Confluent Platform 7.9 is the line that ships Kafka 3.9"
    env = environment(registry)
    kafka_advertised = environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert env["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"] == kafka_advertised
    assert env["SCHEMA_REGISTRY_KAFKASTORE_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["SCHEMA_REGISTRY_SCHEMA_COMPATIBILITY_LEVEL"].upper() == "BACKWARD"
    assert registry["depends_on"]["kafka"]["condition"] == "service_healthy"
    port = urlsplit(env["SCHEMA_REGISTRY_LISTENERS"]).port
    assert f"127.0.0.1:{port}/subjects" in healthcheck_text(registry)
    for name, hub in hubs.items():
        assert hub["depends_on"]["schema-registry"]["condition"] == "service_healthy", name


def test_hub_config_names_the_compose_schema_registry(
    hub_config: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    url = urlsplit(hub_config["registry"]["url"])
    registry = services["schema-registry"]
    assert url.hostname in services and url.hostname == registry["hostname"]
    assert url.port == urlsplit(environment(registry)["SCHEMA_REGISTRY_LISTENERS"]).port
    assert url.password is None or url.password.startswith("env:")
