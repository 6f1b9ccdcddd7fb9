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
import os

from gridhub.config import GridhubSettings
from gridhub.hub import RESEND_ENV, consumer_lag, load_reference_dir, merge_status_file
from gridhub.logs import get_logger
from gridhub.runtime.worker import ChildStage, run_child
from gridhub.streams.merge_resident import MergeContext, ResidentMerger, policy_with
from gridhub.streams.phone_link import PhoneIndex, PhoneStore
from gridhub.streams.state_store import PartitionedResidentStore
from gridhub.streams.topology import (
    StageCounters,
    add_merge_agent,
    add_phone_agent,
    new_app,
    rows_sender,
)
from gridhub.topics import Topics

log = get_logger("merge_worker")


def build(settings: GridhubSettings, bootstrap: str, index: int) -> ChildStage:
    """The merge agent, sending its rows on ``rows``, with the states of the partitions
    this process owns in the merge's consumer group."""
    kafka = settings.kafka
    topics = Topics(kafka.topic_prefix)
    store = PartitionedResidentStore(settings.data_dir / "state" / "residents", kafka.partitions)
    phone_store = PhoneStore(settings.data_dir / "state" / "phones", kafka.partitions)
    policy = policy_with(settings.survivorship.overrides())
    resend = kafka.embedded and os.environ.get(RESEND_ENV, "1") == "1"
    merger = ResidentMerger(store, MergeContext(load_reference_dir(settings), policy))
    app = new_app(f"{kafka.group_id}-merge", bootstrap, kafka.partitions)
    counters = StageCounters()
    batch_lock = asyncio.Lock()

    def owned_of(topic: str) -> set[int]:
        try:
            assignment = app.consumer.assignment()
        except Exception:
            return set()
        return {tp.partition for tp in assignment if tp.topic == topic}

    def owned() -> set[int]:
        return owned_of(topics.person)

    def owned_phones() -> set[int]:
        return owned_of(topics.phones)

    def release_unowned() -> None:
        released = store.release(owned())
        if released:
            log.info("released the state of partitions now merged elsewhere", partitions=released)

    def release_unowned_phones() -> None:
        released = phone_store.release(owned_phones())
        if released:
            log.info("released the phone state of partitions now elsewhere", partitions=released)

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
        resend_claims=resend,
    )
    phone_lock = asyncio.Lock()
    add_phone_agent(
        app,
        topics,
        kafka.partitions,
        PhoneIndex(phone_store),
        counters,
        settings.clickhouse.batch_seconds,
        owned=owned_phones,
        resend=resend,
        after_batch=release_unowned_phones,
        lock=phone_lock,
    )

    @app.timer(0.5)
    async def release_when_idle() -> None:
        if not batch_lock.locked():  # no await below: no batch can start meanwhile
            release_unowned()
        if not phone_lock.locked():
            release_unowned_phones()

    return ChildStage(
        app,
        merge_status_file(index),
        lambda: {
            "merged": counters.merged,
            "lag": consumer_lag(app),
            "partitions": sorted(store.open_partitions),
            "assigned": sorted(owned()),
        },
        on_stop=[store.close, phone_store.close],
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m gridhub.merge_worker --bootstrap HOST:PORT [--config FILE] [--index N]``."""
    run_child(__doc__.splitlines()[0], build, argv)


if __name__ == "__main__":
    main()
