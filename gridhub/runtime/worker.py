"""What every child process of a hub shares: arguments, settings, status file, Faust worker.

A hub runs its stages in child processes (``gridhub.ingest_worker``,
``gridhub.route_worker``, ``gridhub.merge_worker``) because one Python
interpreter runs one thread of bytecode at a time: separate processes let
the operating system spread the stages over the machine's cores. Each child
dies with its parent (PR_SET_PDEATHSIG), like the embedded broker, and
writes its progress to a status file in ``data_dir`` once a second.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust

from gridhub.config import GridhubSettings, load_settings
from gridhub.logs import configure_logging
from gridhub.runtime.broker import die_with_parent
from gridhub.runtime.files import write_json_atomic
from gridhub.runtime.heap import freeze_startup_heap


@dataclass
class ChildStage:
    """One child's app, what it reports, and what to close when it stops."""

    app: faust.App
    status_file: str
    status: Callable[[], dict[str, Any]]
    """Called once a second (in a thread); ``written_at`` is added."""
    on_start: Callable[[], None] | None = None
    on_stop: list[Callable[[], None]] = field(default_factory=list)


def run_child(
    description: str,
    build: Callable[[GridhubSettings, str, int], ChildStage],
    argv: list[str] | None,
) -> None:
    """``python -m gridhub.<child> --bootstrap HOST:PORT [--config FILE] [--index N]``.

    ``--index`` numbers the processes of one stage that run side by side.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default=None)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--index", type=int, default=0)
    args = parser.parse_args(argv)
    die_with_parent()
    settings = load_settings(args.config)
    json_lines = settings.hub.log_format == "json"
    configure_logging(json_lines=json_lines)
    stage = build(settings, args.bootstrap, args.index)
    app = stage.app

    @app.task
    async def started() -> None:
        configure_logging(json_lines=json_lines)  # Faust's worker set up its own logging
        if stage.on_start is not None:
            stage.on_start()

    @app.timer(1.0)
    async def write_status() -> None:
        def write() -> None:
            status = {"written_at": datetime.now(UTC).isoformat(), **stage.status()}
            write_json_atomic(settings.data_dir / stage.status_file, status)

        await asyncio.to_thread(write)

    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.spinner = None  # no terminal spinner: logs and the demo's tables stay clean
    freeze_startup_heap()
    try:
        worker.execute_from_commandline()  # exits with SystemExit
    finally:
        for stop in stage.on_stop:
            stop()
