"""The ingest process: the connectors, beside the route, merge and hub processes.

Checkpoints stay with the connectors: on the embedded broker the hub's sink
sends a BatchAck on ``<prefix>.acks`` for each stored part, and the ack agent
here moves the connectors' resume points.
"""

from __future__ import annotations

import threading
import time

from gridhub.config import GridhubSettings
from gridhub.connectors.base.checkpoint import SinkAcknowledgements
from gridhub.hub import consumer_lag, pipeline_ready
from gridhub.ingest import INGEST_STATUS_FILE, Ingest
from gridhub.logs import get_logger
from gridhub.runtime.worker import ChildStage, run_child
from gridhub.streams.topology import add_ack_agent, new_app
from gridhub.topics import Topics

log = get_logger("ingest_worker")


READY_TIMEOUT_S = 60.0
"""Pull anyway after this long, even if a downstream stage never reported ready."""


def build(settings: GridhubSettings, bootstrap: str, index: int) -> ChildStage:
    """The connectors, and the ack agent that moves their checkpoints.

    The connectors start pulling once the route and merge processes have their
    partitions (:func:`~gridhub.hub.pipeline_ready`), or after ``READY_TIMEOUT_S``.
    """
    kafka = settings.kafka
    topics = Topics(kafka.topic_prefix)
    app = new_app(f"{kafka.group_id}-ingest", bootstrap, kafka.partitions)
    ingest = Ingest(settings, bootstrap, topics)
    add_ack_agent(app, topics, SinkAcknowledgements(ingest.checkpoints))

    def start_when_ready() -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not pipeline_ready(settings) and not ingest.stop_event.is_set():
            if time.monotonic() > deadline:
                log.warning("stages downstream not ready; pulling anyway", waited=READY_TIMEOUT_S)
                break
            time.sleep(0.1)
        if not ingest.stop_event.is_set():
            ingest.start()

    return ChildStage(
        app,
        INGEST_STATUS_FILE,
        lambda: {**ingest.status(), "lag": consumer_lag(app)},
        on_start=lambda: threading.Thread(
            target=start_when_ready, name="start-sources", daemon=True
        ).start(),
        on_stop=[ingest.stop],
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m gridhub.ingest_worker --bootstrap HOST:PORT [--config FILE]``."""
    run_child(__doc__.splitlines()[0], build, argv)


if __name__ == "__main__":
    main()
