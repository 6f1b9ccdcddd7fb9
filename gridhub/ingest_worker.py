"""The ingest process: connectors and the route stage, beside the hub's process.

Python runs one thread of bytecode at a time per process. With pulling and
routing here, and merging and storing in the hub's process, the hub uses two
cores. The hub starts this process and stops it with itself; it also dies
with its parent (PR_SET_PDEATHSIG), like the embedded broker.

Checkpoints stay with the connectors: on the embedded broker the hub's sink
sends a BatchAck on ``<prefix>.acks`` for each stored part, and the ack agent
here moves the connectors' resume points.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import faust

from gridhub.config import load_settings
from gridhub.connectors.base.checkpoint import SinkAcknowledgements
from gridhub.hub import consumer_lag, resident_keyer
from gridhub.ingest import Ingest
from gridhub.logs import configure_logging
from gridhub.runtime.broker import die_with_parent
from gridhub.streams.topology import StageCounters, add_ack_agent, add_route_agent, new_app
from gridhub.topics import Topics


def main(argv: list[str] | None = None) -> None:
    """``python -m gridhub.ingest_worker --bootstrap HOST:PORT [--config FILE]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None)
    parser.add_argument("--bootstrap", required=True)
    args = parser.parse_args(argv)
    die_with_parent()
    settings = load_settings(args.config)
    configure_logging(json_lines=settings.hub.log_format == "json")
    kafka = settings.kafka
    topics = Topics(kafka.topic_prefix)
    app = new_app(f"{kafka.group_id}-ingest", args.bootstrap, kafka.partitions)
    counters = StageCounters()
    add_route_agent(app, topics, resident_keyer(settings), kafka.partitions, counters)
    ingest = Ingest(settings, args.bootstrap, topics)
    add_ack_agent(app, topics, SinkAcknowledgements(ingest.checkpoints))

    @app.task
    async def start_sources() -> None:
        configure_logging(json_lines=settings.hub.log_format == "json")
        ingest.start()

    @app.timer(1.0)
    async def write_status() -> None:
        extra = {
            "routed": counters.routed,
            "dead_letters": counters.dead_letters,
            "lag": consumer_lag(app),
        }
        await asyncio.to_thread(ingest.write_status, settings.data_dir, extra)

    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.spinner = None  # no terminal spinner: logs and the demo's tables stay clean
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        ingest.stop()
        sys.exit(exc.code)
    finally:
        ingest.stop()


if __name__ == "__main__":
    main()
