"""The ingest process: the connectors, beside the route, merge and hub processes.

Checkpoints stay with the connectors: on the embedded broker the hub's sink
sends a BatchAck on ``<prefix>.acks`` for each stored part, and the ack agent
here moves the connectors' resume points.
"""

from __future__ import annotations

from gridhub.config import GridhubSettings
from gridhub.connectors.base.checkpoint import SinkAcknowledgements
from gridhub.hub import consumer_lag
from gridhub.ingest import INGEST_STATUS_FILE, Ingest
from gridhub.runtime.worker import ChildStage, run_child
from gridhub.streams.topology import add_ack_agent, new_app
from gridhub.topics import Topics


def build(settings: GridhubSettings, bootstrap: str, index: int) -> ChildStage:
    """The connectors, and the ack agent that moves their checkpoints."""
    kafka = settings.kafka
    topics = Topics(kafka.topic_prefix)
    app = new_app(f"{kafka.group_id}-ingest", bootstrap, kafka.partitions)
    ingest = Ingest(settings, bootstrap, topics)
    add_ack_agent(app, topics, SinkAcknowledgements(ingest.checkpoints))
    return ChildStage(
        app,
        INGEST_STATUS_FILE,
        lambda: {**ingest.status(), "lag": consumer_lag(app)},
        on_start=ingest.start,
        on_stop=[ingest.stop],
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m gridhub.ingest_worker --bootstrap HOST:PORT [--config FILE]``."""
    run_child(__doc__.splitlines()[0], build, argv)


if __name__ == "__main__":
    main()
