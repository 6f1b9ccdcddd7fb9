"""The embedded schema registry: Confluent's REST API on loopback, for the embedded default.

With ``[registry] url = "embedded"`` the hub serves this on ``[registry] serve``
so that the hub, its route process and any local publisher (a Confluent
serializer included) share one registry without running a Java service.
It holds no credentials, so it listens on a loopback address only.

Endpoints (the subset of Confluent's API that serializers and operators use)::

    GET  /subjects                                 GET  /schemas/ids/{id}
    GET  /subjects/{s}/versions                    GET  /schemas/ids/{id}/versions
    GET  /subjects/{s}/versions/{n|latest}         GET|PUT /config
    GET  /subjects/{s}/versions/{n|latest}/schema  GET|PUT /config/{s}
    POST /subjects/{s}/versions   (register)       POST /subjects/{s}   (look up)
    POST /compatibility/subjects/{s}/versions[/{n|latest}]

Answers are ``application/vnd.schemaregistry.v1+json``; errors are Confluent's
``{"error_code": 40901, "message": "..."}``. State lives in
:class:`~gridhub.registry.store.SubjectStore`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from gridhub.logs import get_logger
from gridhub.registry.store import ApiError, SubjectStore
from gridhub.schemas.registry_client import CONTENT_TYPE
from gridhub.store.serve import loopback_only

log = get_logger("registry.server")

Route = Callable[[SubjectStore, dict[str, str], dict[str, Any], dict[str, list[str]]], Any]
ROUTES: list[tuple[str, re.Pattern[str], Route]] = []


def _route(method: str, pattern: str) -> Callable[[Route], Route]:
    def add(handler: Route) -> Route:
        ROUTES.append((method, re.compile(f"^{pattern}$"), handler))
        return handler

    return add


def _schema_of(body: dict[str, Any]) -> str:
    """The schema text of a register, look-up or compatibility request."""
    kind = str(body.get("schemaType") or "AVRO").upper()
    if kind != "AVRO":
        raise ApiError(422, 42201, f"Invalid schema: only AVRO schemas are held here, not {kind}")
    if body.get("references"):
        raise ApiError(422, 42201, "Invalid schema: schema references are not supported here")
    schema = body.get("schema")
    if not isinstance(schema, str) or not schema.strip():
        raise ApiError(422, 42201, "Invalid schema: the body must carry the schema as a string")
    return schema


@_route("GET", "/subjects")
def _subjects(store: SubjectStore, _: dict[str, str], __: Any, ___: Any) -> Any:
    return store.subjects()


@_route("GET", "/subjects/(?P<subject>[^/]+)/versions")
def _versions(store: SubjectStore, p: dict[str, str], _: Any, __: Any) -> Any:
    return store.versions(p["subject"])


@_route("GET", "/subjects/(?P<subject>[^/]+)/versions/(?P<ref>[^/]+)")
def _version(store: SubjectStore, p: dict[str, str], _: Any, __: Any) -> Any:
    return store.version(p["subject"], p["ref"])


@_route("GET", "/subjects/(?P<subject>[^/]+)/versions/(?P<ref>[^/]+)/schema")
def _version_schema(store: SubjectStore, p: dict[str, str], _: Any, __: Any) -> Any:
    return json.loads(store.version(p["subject"], p["ref"])["schema"])


@_route("POST", "/subjects/(?P<subject>[^/]+)/versions")
def _register(store: SubjectStore, p: dict[str, str], body: dict[str, Any], _: Any) -> Any:
    return {"id": store.register(p["subject"], _schema_of(body))}


@_route("POST", "/subjects/(?P<subject>[^/]+)")
def _lookup(store: SubjectStore, p: dict[str, str], body: dict[str, Any], _: Any) -> Any:
    return store.lookup(p["subject"], _schema_of(body))


@_route("GET", "/schemas/ids/(?P<id>[0-9]+)")
def _by_id(store: SubjectStore, p: dict[str, str], _: Any, __: Any) -> Any:
    return {"schema": store.schema(int(p["id"]))}


@_route("GET", "/schemas/ids/(?P<id>[0-9]+)/versions")
def _id_versions(store: SubjectStore, p: dict[str, str], _: Any, __: Any) -> Any:
    return store.uses(int(p["id"]))


@_route("GET", "/config")
def _global_level(store: SubjectStore, _: dict[str, str], __: Any, ___: Any) -> Any:
    return {"compatibilityLevel": store.level(None)}


@_route("GET", "/config/(?P<subject>[^/]+)")
def _subject_level(
    store: SubjectStore, p: dict[str, str], _: Any, query: dict[str, list[str]]
) -> Any:
    default_to_global = query.get("defaultToGlobal", ["false"])[0].lower() == "true"
    return {"compatibilityLevel": store.level(p["subject"], default_to_global=default_to_global)}


@_route("PUT", "/config")
def _set_global_level(store: SubjectStore, _: dict[str, str], body: dict[str, Any], __: Any) -> Any:
    return {"compatibility": store.set_level(None, str(body.get("compatibility", "")))}


@_route("PUT", "/config/(?P<subject>[^/]+)")
def _set_subject_level(store: SubjectStore, p: dict[str, str], body: dict[str, Any], _: Any) -> Any:
    return {"compatibility": store.set_level(p["subject"], str(body.get("compatibility", "")))}


@_route("POST", "/compatibility/subjects/(?P<subject>[^/]+)/versions(?:/(?P<ref>[^/]+))?")
def _compatibility(
    store: SubjectStore, p: dict[str, str], body: dict[str, Any], _: dict[str, list[str]]
) -> Any:
    problems = store.test(p["subject"], p.get("ref"), _schema_of(body))
    answer: dict[str, Any] = {"is_compatible": not problems}
    if problems:
        answer["messages"] = problems
    return answer


def answer(store: SubjectStore, method: str, target: str, raw_body: bytes) -> tuple[int, Any]:
    """Status and JSON body of one request (no HTTP involved, so it is easy to reason about)."""
    url = urlsplit(target)
    path = url.path.rstrip("/") or "/"
    for route_method, pattern, handler in ROUTES:
        match = pattern.match(path)
        if match is None or route_method != method:
            continue
        params = {key: unquote(value) for key, value in match.groupdict().items() if value}
        try:
            body = json.loads(raw_body or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            return 422, {"error_code": 42201, "message": f"Invalid request body: {exc}"}
        try:
            return 200, handler(store, params, body, parse_qs(url.query))
        except ApiError as exc:
            return exc.status, {"error_code": exc.error_code, "message": exc.message}
    known = any(pattern.match(path) for _, pattern, _ in ROUTES)
    status = 405 if known else 404
    return status, {"error_code": status, "message": f"{method} {path} is not served here"}


class RegistryServer:
    """Serves one :class:`SubjectStore` over HTTP in a daemon thread."""

    def __init__(self, listen: str, data_dir: Path) -> None:
        """Bind ``listen`` (loopback only) and load the state under ``data_dir/registry``.

        Raises:
            ConfigError: ``listen`` is not a loopback address.
            OSError: the port cannot be bound.
        """
        host, port = loopback_only(
            listen, key="registry.serve", why="the embedded schema registry has no access control"
        )
        self.store = SubjectStore(data_dir / "registry")
        store = self.store

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, body = answer(store, method, self.path, self.rfile.read(length))
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        shown = f"[{host}]" if ":" in host else host
        self.address = f"{shown}:{self._httpd.server_address[1]}"
        self.url = f"http://{self.address}"
        """Where clients reach it (the bound port, also when ``listen`` asked for port 0)."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.start()
        log.info("embedded schema registry listening", url=self.url)

    def stop(self) -> None:
        """Stop serving (if it ever started) and free the port."""
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()


def serve_registry(listen: str, data_dir: Path) -> RegistryServer:
    """Start the embedded registry on ``listen``, or on a free port of the same host when
    that port is taken (the hub hands the bound URL to its own processes and shows it in
    its status; a taken port must not stop the hub)."""
    try:
        server = RegistryServer(listen, data_dir)
    except OSError as exc:
        host = listen.rpartition(":")[0]
        server = RegistryServer(f"{host}:0", data_dir)
        log.warning(
            "registry.serve is taken; the embedded schema registry listens elsewhere",
            wanted=listen,
            url=server.url,
            reason=str(exc),
        )
    server.start()
    return server
