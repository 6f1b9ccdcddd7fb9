"""``GET /health`` on ``[hub] listen``: is data flowing, and if not, what is stuck.

Answers 200 with ``{"status": "ok", ...}`` when every component is healthy and
503 with the failing components' reasons otherwise, so that Docker's and
Kubernetes' health checks and an operator's browser read the same thing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gridhub.logs import get_logger

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
        "clickhouse": {"healthy": "tables" in status, "reason": status.get("store_error", "")},
    }
    for name, source in status.get("sources", {}).items():
        components[f"source.{name}"] = {
            "healthy": bool(source.get("healthy")),
            "reason": source.get("reason", ""),
            "last_success": source.get("last_success"),
        }
    healthy = all(component["healthy"] for component in components.values())
    return {"status": "ok" if healthy else "unhealthy", "components": components}


class HealthServer:
    """A small threaded HTTP server; the hub keeps running if the port is taken."""

    def __init__(self, listen: str, report: Report) -> None:
        host, _, port = listen.rpartition(":")
        self.report = report
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/health":
                    self.send_error(404, "only /health is served here")
                    return
                try:
                    body = server.report()
                except Exception as exc:
                    body = {"status": "unhealthy", "error": f"{type(exc).__name__}: {exc}"}
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
                self.send_response(200 if body.get("status") == "ok" else 503)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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


def start_health_server(listen: str, report: Report) -> HealthServer | None:
    """Start the endpoint, or log why not (a taken port must not stop the hub)."""
    try:
        server = HealthServer(listen, report)
    except OSError as exc:
        log.warning("health endpoint not started", listen=listen, reason=str(exc))
        return None
    server.start()
    return server
