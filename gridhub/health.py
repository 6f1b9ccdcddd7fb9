"""The hub's HTTP endpoint on ``[hub] listen``.

``GET /health``: is data flowing, and if not, what is stuck. ``GET /metrics``: the
same and more for Prometheus (``gridhub.metrics``). ``GET /``: the dashboard
(``gridhub.dashboard``), its files under ``/static/`` and its data at
``/api/overview``. Answers 200 with
``{"status": "ok", ...}`` when every component is healthy and 503 with the
failing components' reasons otherwise, so that Docker's and Kubernetes'
health checks and an operator's browser read the same thing.

``POST /ingest/v1/{source}/{entity}`` (when ``[hub] ingest_token`` is set):
see ``gridhub.connectors.http_ingest``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gridhub.connectors.http_ingest import PREFIX, HttpIngest
from gridhub.logs import get_logger
from gridhub.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

log = get_logger("health")

Report = Callable[[], dict[str, Any]]


def health_report(
    status: dict[str, Any], *, broker_up: bool, processes: dict[str, bool]
) -> dict[str, Any]:
    """Components and their state, from a hub status snapshot and which processes run."""
    components: dict[str, dict[str, Any]] = {
        "broker": {"healthy": broker_up, "reason": "" if broker_up else "broker does not answer"},
        **{
            name: {
                "healthy": alive,
                "reason": "" if alive else f"the {name} process is not running",
            }
            for name, alive in processes.items()
        },
        "sink": {
            "healthy": not status.get("stages", {}).get("sink_failing"),
            "reason": status.get("stages", {}).get("sink_failing", ""),
        },
        "clickhouse": {
            "healthy": "tables" in status and not status.get("store_error"),
            "reason": status.get("store_error", ""),
        },
    }
    for name, source in status.get("sources", {}).items():
        components[f"source.{name}"] = {
            "healthy": bool(source.get("healthy")),
            "reason": source.get("reason", ""),
            "last_success": source.get("last_success"),
        }
    healthy = all(component["healthy"] for component in components.values())
    return {"status": "ok" if healthy else "unhealthy", "components": components}


_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
STATIC: dict[str, tuple[bytes, str]] = {
    path.name: (path.read_bytes(), _TYPES[path.suffix])
    for path in (Path(__file__).parent / "dashboard" / "static").iterdir()
    if path.suffix in _TYPES
}
"""The dashboard's files, read once: name -> (bytes, content type)."""

AdminAction = Callable[[], tuple[int, dict[str, Any]]]
"""An operator command the hub takes over HTTP (``POST /admin/...``): status and answer."""
LOOPBACK = frozenset({"127.0.0.1", "::1"})
RELOAD_PATH = "/admin/reference/reload"


class HealthServer:
    """A small threaded HTTP server; the hub keeps running if the port is taken."""

    def __init__(
        self,
        listen: str,
        report: Report,
        ingest: HttpIngest | None = None,
        admin: dict[str, AdminAction] | None = None,
        metrics: Callable[[], bytes] | None = None,
        overview: Report | None = None,
    ) -> None:
        host, _, port = listen.rpartition(":")
        self.report = report
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _file(self, data: bytes, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if overview is not None and path == "/api/overview":
                    self._answer(200, overview())
                    return
                if overview is not None and (path == "/" or path.startswith("/static/")):
                    name = "index.html" if path == "/" else path.removeprefix("/static/")
                    page = STATIC.get(name)
                    if page is None:
                        self.send_error(404, "no such dashboard file")
                        return
                    self._file(*page)
                    return
                if path == "/metrics" and metrics is not None:
                    data = metrics()
                    self.send_response(200)
                    self.send_header("Content-Type", METRICS_CONTENT_TYPE)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if path != "/health":
                    self.send_error(404, "GET /, /health and /metrics are served here")
                    return
                try:
                    body = server.report()
                except Exception as exc:
                    body = {"status": "unhealthy", "error": f"{type(exc).__name__}: {exc}"}
                self._answer(200 if body.get("status") == "ok" else 503, body)

            def do_POST(self) -> None:
                action = (admin or {}).get(self.path.split("?")[0])
                if action is not None:
                    if self.client_address[0] not in LOOPBACK:
                        self._answer(403, {"error": "operator commands are taken from this host"})
                        return
                    self._answer(*action())
                    return
                if ingest is None or not self.path.startswith(PREFIX):
                    self._answer(404, {"error": "HTTP ingest is off ([hub] ingest_token)"})
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0 or length > ingest.max_bytes:
                    self.close_connection = True  # the body is not read
                    self._answer(
                        413 if length > 0 else 411,
                        {"error": f"send a Content-Length of at most {ingest.max_bytes} bytes"},
                    )
                    return
                answer = ingest.handle(
                    self.path, self.headers.get("Authorization"), self.rfile.read(length)
                )
                self._answer(answer.status, answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
        self._httpd.daemon_threads = True
        self.address = "{}:{}".format(*self._httpd.server_address[:2])
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.start()
        log.info("health endpoint listening", address=self.address)

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._httpd.shutdown()
        self._httpd.server_close()


def start_health_server(
    listen: str,
    report: Report,
    ingest: HttpIngest | None = None,
    admin: dict[str, AdminAction] | None = None,
    *,
    metrics: Callable[[], bytes] | None = None,
    overview: Report | None = None,
) -> HealthServer | None:
    """Start the endpoint, or log why not (a taken port must not stop the hub)."""
    try:
        server = HealthServer(listen, report, ingest, admin, metrics, overview)
    except OSError as exc:
        log.warning("health endpoint not started", listen=listen, reason=str(exc))
        return None
    server.start()
    return server
