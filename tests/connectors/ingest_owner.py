"""One ingest process for the ownership tests: the real ``Ingest``, until SIGTERM.

``python -m tests.connectors.ingest_owner CONFIG STATUS_FILE`` joins the
connector group of the configuration's broker, pulls what it is assigned,
writes the sources it owns to STATUS_FILE every 0.1 s and logs JSON lines to
stderr (``taking over source`` / ``let go of source`` with their times).
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from gridhub.config import load_settings
from gridhub.ingest import Ingest
from gridhub.logs import configure_logging
from gridhub.runtime.files import write_json_atomic
from gridhub.topics import Topics


def main(config: str, status_file: str) -> None:
    configure_logging(json_lines=True)
    settings = load_settings(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ingest = Ingest(settings, settings.kafka.bootstrap, Topics(settings.kafka.topic_prefix))
    ingest.start()
    while not stop.wait(0.1):
        status = ingest.status()
        write_json_atomic(Path(status_file), {"owned": status["owned"], "running": True})
    ingest.stop()
    write_json_atomic(Path(status_file), {"owned": [], "running": False})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
