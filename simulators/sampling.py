"""Small random helpers shared by the source generators.

Fault rates are realistic and small, so a small county could end up with
none of a kind by chance; ``pick`` guarantees a minimum so every nasty case
the spec admits is present in every generated county.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TypeVar

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")

T = TypeVar("T")


def pick(rng: random.Random, candidates: Sequence[T], rate: float, minimum: int) -> list[T]:
    """About ``rate`` of the candidates, at least ``minimum`` (when there are enough)."""
    count = min(len(candidates), max(minimum, round(rate * len(candidates))))
    return rng.sample(list(candidates), count)


def moment(rng: random.Random, end: datetime, days: float) -> datetime:
    """A whole-second time in the ``days`` before ``end``."""
    seconds = rng.randrange(60, max(61, int(days * 86400)))
    return (end - timedelta(seconds=seconds)).replace(microsecond=0)


def iso(when: datetime) -> str:
    """ISO-8601 with the China offset, as the party-building API writes it."""
    return when.replace(tzinfo=CHINA).isoformat(timespec="seconds")


def epoch_ms(when: datetime) -> int:
    """Epoch milliseconds of a naive China-local time, as the hotline API writes it."""
    return int(when.replace(tzinfo=CHINA).timestamp() * 1000)
