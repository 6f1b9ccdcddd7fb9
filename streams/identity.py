"""Resident keys and the partition a resident's events live on.

``resident_key`` is a keyed hash (HMAC-SHA256) of the normalised 公民身份号码,
so the contract tables never need the number itself to join, and someone who
has only the tables cannot enumerate numbers to find a key. Every event of a
resident goes to the same partition of ``person`` and ``sink`` (co-partitioned
topics), so one worker owns a resident's state and no lookup crosses
partitions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path


class ResidentKeyer:
    """Derives stable resident keys with the deployment's secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the pseudonym key must have at least 16 bytes")
        self._secret = secret

    def for_id(self, id18: str) -> str:
        """The key of the resident with this normalised ID number."""
        return hmac.new(self._secret, b"id:" + id18.encode("ascii"), hashlib.sha256).hexdigest()[
            :32
        ]


def partition_for(key: str, partitions: int) -> int:
    """The partition of ``person`` that owns this key (a resident's, or an unlinked record's)."""
    return int(key[-8:], 16) % partitions


def load_or_create_key(path: Path) -> bytes:
    """The pseudonym key kept in ``data_dir`` when the configuration gives none."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(key)
    tmp.chmod(0o600)
    tmp.replace(path)
    return key
