"""``gridhub status``: one screen, ``--json`` for scripts, ``--watch`` to follow."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

STATUS: dict[str, Any] = {
    "pid": 999999,  # no such process: the hub is not running
    "written_at": "2026-11-24T01:00:00+00:00",
    "broker": {"bootstrap": "127.0.0.1:1", "embedded": True},
    "sources": {
        "police": {
            "healthy": True,
            "reason": "",
            "records": 42,
            "errors": 0,
            "last_success": "2026-11-24T00:59:59+00:00",
            "positions": {"syrk": {"low": "2026-11-21 05:07:24"}},
        },
        "party": {
            "healthy": False,
            "reason": "source party: the API refused the token (401)",
            "records": 0,
            "errors": 3,
            "last_success": None,
            "positions": {},
        },
    },
    "stages": {"routed": 42, "merged": 40, "sunk_rows": 90, "dead_letters": 2},
    "lag": {"gridhub.person": {"0": 3}},
    "tables": {"resident": 40},
    "health": "127.0.0.1:8080",
}


def write(directory: Path, status: dict[str, Any]) -> Path:
    (directory / "data").mkdir(exist_ok=True)
    (directory / "data" / "status.json").write_text(json.dumps(status), "utf-8")
    config = directory / "gridhub.toml"
    config.write_text('[hub]\ndata_dir = "data"\n', "utf-8")
    return config


def gridhub(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridhub.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", **env},
    )


def test_one_screen_and_json_say_what_is_wrong(tmp_path: Path) -> None:
    config = write(tmp_path, STATUS)
    screen = gridhub("status", "--config", str(config))
    assert screen.returncode == 0, screen.stderr
    assert "not running" in screen.stdout
    assert "refused the token (401)" in screen.stdout
    assert "gridhub.person" in screen.stdout and "resident" in screen.stdout
    assert "dashboard http://127.0.0.1:8080/" in screen.stdout
    shown = json.loads(gridhub("status", "--config", str(config), "--json").stdout)
    assert shown["running"] is False
    assert shown["sources"]["party"]["healthy"] is False


def test_watch_refreshes_until_interrupted(tmp_path: Path) -> None:
    config = write(tmp_path, STATUS)
    watching = subprocess.Popen(
        [sys.executable, "-m", "gridhub.cli", "status", "--config", str(config), "--watch",
         "--interval", "0.3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200", "FORCE_COLOR": "1"},
    )  # fmt: skip
    assert watching.stdout is not None
    seen = bytearray()
    stream = watching.stdout

    def read() -> None:
        while chunk := stream.read1(4096):
            seen.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()

    def shown(text: str) -> bool:
        plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode("utf-8", "replace"))
        return text in plain

    deadline = time.monotonic() + 60
    while not shown("2026-11-24T01:00:00"):  # the first screen
        assert time.monotonic() < deadline, seen[-500:]
        time.sleep(0.1)
    write(tmp_path, {**STATUS, "written_at": "2026-11-24T01:00:07+00:00"})
    while not shown("2026-11-24T01:00:07"):  # refreshed without being asked
        assert time.monotonic() < deadline, seen[-500:]
        time.sleep(0.1)
    watching.send_signal(signal.SIGINT)
    assert watching.wait(timeout=30) == 0
    reader.join(timeout=10)
    out = seen.decode("utf-8", "replace")
    assert "\x1b[31m" in out  # red for the source that is down, and only colour there
    assert "\x1b[1;36m" not in out  # no decoration of numbers
