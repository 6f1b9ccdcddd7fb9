"""Names of the hub's Kafka topics, in one place.

``<prefix>.raw.<source>.<entity>``  connector batches (Envelope of source records)
``<prefix>.person``                  canonical person events, partitioned by resident
``<prefix>.rows``                    merged rows on their way to the store (RowBatch)
``<prefix>.dead_letters``            rejected records with their reason
``<prefix>.acks``                    stored parts of connector batches (BatchAck)
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_ENTITIES: dict[str, tuple[str, ...]] = {
    "party": ("members", "activities"),
    "police": ("syrk", "jq"),
    "civil": ("jzdx", "roster_elderly", "roster_disability"),
    "hotline": ("tickets",),
}


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

    def all_raw(self) -> list[str]:
        """Every raw topic the hub knows."""
        return [self.raw(s, e) for s, entities in SOURCE_ENTITIES.items() for e in entities]
