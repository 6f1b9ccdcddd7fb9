"""Names of the hub's Kafka topics, in one place.

``<prefix>.raw.<source>.<entity>``  connector batches (Envelope of source records)
``<prefix>.person``                  canonical person events, partitioned by resident
``<prefix>.phones``                  records without a valid ID number, and residents' phone claims,
                                     partitioned by phone (identity.md rule 2)
``<prefix>.rows``                    merged rows on their way to the store (RowBatch)
``<prefix>.dead_letters``            rejected records with their reason
``<prefix>.acks``                    stored parts of connector batches (BatchAck)
``<prefix>.checkpoints``             connector positions (compacted, key ``source.entity``)
``<prefix>.connectors``              one partition per pulled source: group membership assigns each
                                     source to one process; replay requests reach its owner here
``<prefix>.replays``                 what became of each replay request (for ``gridhub replay``)
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_ENTITIES: dict[str, tuple[str, ...]] = {
    "party": ("members", "activities"),
    "police": ("syrk", "jq"),
    "civil": ("jzdx", "roster_elderly", "roster_disability", "roster_editions"),
    "hotline": ("tickets",),
}

PULLED_SOURCES: tuple[str, ...] = tuple(SOURCE_ENTITIES)
"""The fixed order of sources over the partitions of ``<prefix>.connectors``; a new
source is appended, never inserted, so running processes agree on the mapping."""


@dataclass(frozen=True)
class Topics:
    """Topic names for one deployment's prefix."""

    prefix: str = "gridhub"

    def raw(self, source: str, entity: str) -> str:
        """Where a connector publishes one entity's batches."""
        return f"{self.prefix}.raw.{source}.{entity}"

    @property
    def person(self) -> str:
        """Canonical person events keyed by resident."""
        return f"{self.prefix}.person"

    @property
    def phones(self) -> str:
        """Records rule 2 decides and the merge's phone claims, keyed by phone."""
        return f"{self.prefix}.phones"

    @property
    def rows(self) -> str:
        """Merged rows from a merge process to the process that holds the store."""
        return f"{self.prefix}.rows"

    @property
    def dead_letters(self) -> str:
        """Rejected records."""
        return f"{self.prefix}.dead_letters"

    @property
    def acks(self) -> str:
        """BatchAcks: parts of connector batches that are stored (embedded broker)."""
        return f"{self.prefix}.acks"

    @property
    def checkpoints(self) -> str:
        """Connector positions, compacted: the last value per ``source.entity`` counts."""
        return f"{self.prefix}.checkpoints"

    @property
    def connectors(self) -> str:
        """Partition ``i`` stands for source ``PULLED_SOURCES[i]`` (ownership, replays)."""
        return f"{self.prefix}.connectors"

    @property
    def replays(self) -> str:
        """Outcomes of replay requests, keyed by request id."""
        return f"{self.prefix}.replays"

    def all_raw(self) -> list[str]:
        """Every raw topic the hub knows."""
        return [self.raw(s, e) for s, entities in SOURCE_ENTITIES.items() for e in entities]
