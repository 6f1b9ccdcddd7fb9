"""The route process: stage 1 (validate, key, repartition), between the connectors and
the merge.

Routing decodes and validates every source record; in its own process it
does not compete with the connectors (ingest process) or the merge for one
interpreter.
"""

from __future__ import annotations

from gridhub.config import GridhubSettings
from gridhub.hub import ROUTE_STATUS_FILE, consumer_lag, resident_keyer
from gridhub.runtime.worker import ChildStage, run_child
from gridhub.schemas.registry_client import SchemaRegistryClient
from gridhub.streams.topology import StageCounters, add_route_agent, new_app
from gridhub.streams.writer_schema import WriterSchemas
from gridhub.topics import Topics


def build(settings: GridhubSettings, bootstrap: str, index: int) -> ChildStage:
    """The route agent on ``raw.*``; the hub passes its embedded registry's URL in the
    environment (``GRIDHUB_REGISTRY__URL``), so ``embedded`` here means none is served."""
    kafka = settings.kafka
    app = new_app(f"{kafka.group_id}-route", bootstrap, kafka.partitions)
    counters = StageCounters()
    topics = Topics(kafka.topic_prefix)
    registry = settings.registry
    schemas = None
    if not registry.embedded:
        client = SchemaRegistryClient(registry.url, timeout=registry.timeout_seconds)
        schemas = WriterSchemas(client)
    add_route_agent(app, topics, resident_keyer(settings), kafka.partitions, counters, schemas)
    stage = ChildStage(
        app,
        ROUTE_STATUS_FILE,
        lambda: {
            "routed": counters.routed,
            "dead_letters": counters.dead_letters,
            "lag": consumer_lag(app),
            "assigned": len(app.consumer.assignment()),
            "registry_retries": schemas.retries if schemas is not None else 0,
        },
    )
    if schemas is not None:
        stage.on_stop.append(schemas.client.close)
    return stage


def main(argv: list[str] | None = None) -> None:
    """``python -m gridhub.route_worker --bootstrap HOST:PORT [--config FILE]``."""
    run_child(__doc__.splitlines()[0], build, argv)


if __name__ == "__main__":
    main()
