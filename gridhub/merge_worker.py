"""The merge process: stage 2, beside the hub's process and the ingest processes.

The merge is the costliest stage per record, and the store (chdb) can be
held by one process only, so by default the merge runs in processes of its
own (``[hub] merge_processes``, sharing the partitions of ``person`` as one
consumer group), each with the resident states of its partitions in RocksDB,
and sends its rows to the hub's process as RowBatches on ``<prefix>.rows``
(see ``streams/row_batch.py``).
"""

from __future__ import annotations

import asyncio

from gridhub.config import GridhubSettings
from gridhub.hub import consumer_lag, load_reference_dir, merge_status_file
from gridhub.logs import get_logger
from gridhub.runtime.worker import ChildStage, run_child
from gridhub.streams.merge_resident import MergeContext, ResidentMerger, policy_with
from gridhub.streams.state_store import PartitionedResidentStore
from gridhub.streams.topology import StageCounters, add_merge_agent, new_app, rows_sender
from gridhub.topics import Topics

log = get_logger("merge_worker")


def build(settings: GridhubSettings, bootstrap: str, index: int) -> ChildStage:
    """The merge agent, sending its rows on ``rows``, with the states of the partitions
    this process owns in the merge's consumer group."""
    kafka = settings.kafka
    topics = Topics(kafka.topic_prefix)
    store = PartitionedResidentStore(settings.data_dir / "state" / "residents", kafka.partitions)
    policy = policy_with(settings.survivorship.overrides())
    merger = ResidentMerger(store, MergeContext(load_reference_dir(settings), policy))
    app = new_app(f"{kafka.group_id}-merge", bootstrap, kafka.partitions)
    counters = StageCounters()
    batch_lock = asyncio.Lock()

    def owned() -> set[int]:
        try:
            assignment = app.consumer.assignment()
        except Exception:
            return set()
        return {tp.partition for tp in assignment if tp.topic == topics.person}

    def release_unowned() -> None:
        released = store.release(owned())
        if released:
            log.info("released the state of partitions now merged elsewhere", partitions=released)

    add_merge_agent(
        app,
        topics,
        kafka.partitions,
        merger,
        counters,
        settings.clickhouse.batch_rows,
        settings.clickhouse.batch_seconds,
        rows_sender(app, topics, kafka.partitions),
        owned=owned,
        batch_lock=batch_lock,
        after_batch=release_unowned,
        reference=lambda: load_reference_dir(settings),
    )

    @app.timer(0.5)
    async def release_when_idle() -> None:
        if not batch_lock.locked():  # no await below: no batch can start meanwhile
            release_unowned()

    return ChildStage(
        app,
        merge_status_file(index),
        lambda: {
            "merged": counters.merged,
            "lag": consumer_lag(app),
            "partitions": sorted(store.open_partitions),
            "assigned": sorted(owned()),
        },
        on_stop=[store.close],
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m gridhub.merge_worker --bootstrap HOST:PORT [--config FILE] [--index N]``."""
    run_child(__doc__.splitlines()[0], build, argv)


if __name__ == "__main__":
    main()
