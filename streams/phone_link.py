"""Stage 1b: rule 2 of identity.md, the records that no valid ID number keys.

Consumes ``phones`` (partitioned by normalised phone): records the route stage
could not key by a valid 公民身份号码 but that carry a valid, unmasked phone,
and the merge's *claims* (resident R observed phone P on its own records, with
R's name; or P is no longer R's). Produces, for ``person``, each
record sent to where it belongs now: to the one resident its phone and name
point to (link rule ``phone``), else to its unlinked key, and, when a later
claim changes that, a withdrawal where it was before. So a record links late
when a new resident record makes the evidence sufficient, and unlinks when its
phone turns out to be shared. A person record (``syrk``, ``jzdx``, party member,
roster row) that no resident takes is a dead letter, never an unlinked record
(identity.md), and is linked if a claim later makes that possible.

State, per phone (RocksDB, one database per partition of ``phones``): the
claims and the newest version of every record, with where it was last sent.
Where a record goes is a function of that state alone, so any order of
records and claims ends with the same destinations.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridhub.streams.identity import partition_for
from gridhub.streams.normalize import normalize_name
from gridhub.streams.route import PERSON_ID, unlinked_key
from gridhub.streams.state_store import PartitionDatabases
from rocksdict import Rdict, WriteBatch

HONORIFICS = ("先生", "女士")
"""A record may name its person only by surname and one of these. Whether the title
fits the resident's gender is not asked (identity.md does not; operators pick either)."""

LINK_PHONE = "phone"
"""The link rule of a record linked by rule 2 (``grid.events.link_rule``)."""
WITHDRAW = "withdraw"
"""A forwarded copy that takes the record back from where it was sent before."""

WHY_NO_RESIDENT = "手机号不属于任何已知居民 (the phone belongs to no known resident)"
WHY_NAME = "姓名与该手机号的居民不符 (the name contradicts the phone's only resident)"


def why_shared(count: int) -> str:
    return f"手机号为 {count} 位居民共用 (the phone is shared by {count} residents)"


def name_fits(record_name: str | None, name: str) -> bool:
    """identity.md: the name does not contradict the resident's when it is equal, or
    is only a surname + 先生/女士; a record without a name does not link."""
    if not record_name:
        return False
    own = normalize_name(record_name) or ""
    if own == name:
        return True
    for title in HONORIFICS:
        surname = own.removesuffix(title)
        if surname != own and 1 <= len(surname) <= 2 and len(name) > len(surname):
            return name.startswith(surname)
    return False


@dataclass(frozen=True)
class Decision:
    """Where one record goes: a resident key and rule ``phone``, or its unlinked key and
    why (``to`` None: a person record that waits as a dead letter)."""

    to: str | None
    rule: str
    why: str


def decide(claims: dict[str, str], record: dict[str, Any]) -> Decision:
    """Rule 2 for one record against its phone's claims (resident -> name)."""
    unlinked = (
        None
        if record["entity"] in PERSON_ID
        else unlinked_key(record["source"], record["entity"], record["source_key"])
    )
    if not claims:
        return Decision(unlinked, "", WHY_NO_RESIDENT)
    if len(claims) > 1:
        return Decision(unlinked, "", why_shared(len(claims)))
    ((resident, name),) = claims.items()
    if not name_fits(record.get("name"), name):
        return Decision(unlinked, "", WHY_NAME)
    return Decision(resident, LINK_PHONE, "")


@dataclass(frozen=True)
class Forward:
    """One copy of a record for ``person``: to ``key``, with ``link`` (``phone``, ``""``
    for an unlinked record, or ``withdraw``) and the unlinked reason."""

    source: str
    entity: str
    source_key: str
    key: str
    link: str
    raw: bytes
    why: str = ""
    again: bool = False
    """Sent again after a claim or a restart: not new source data (freshness leaves it out)."""


@dataclass(frozen=True)
class Letter:
    """A person record no resident takes: a dead letter with the reason."""

    source: str
    entity: str
    source_key: str
    reason: str
    raw: bytes


@dataclass
class PhoneOutput:
    """What a batch sends. Of several copies of one record to one key only the last is
    kept: they would carry the same time in the store, where a withdrawal and a copy
    of equal time would not tell which came last."""

    copies: dict[tuple[str, str, str, str], Forward] = field(default_factory=dict)
    letters: list[Letter] = field(default_factory=list)

    def send(self, forward: Forward) -> None:
        where = (forward.source, forward.entity, forward.source_key, forward.key)
        self.copies.pop(where, None)
        self.copies[where] = forward

    @property
    def forwards(self) -> list[Forward]:
        return list(self.copies.values())


def record_id(source: str, entity: str, source_key: str) -> str:
    return f"{source}:{entity}:{source_key}"


class PhoneIndex:
    """Applies records and claims to the phones of one process's partitions.

    Changed phones stay in memory until :meth:`commit`, called once what they
    sent is accepted by Kafka; a crash before replays the inputs onto the old
    states, which send the same copies again.
    """

    def __init__(self, store: PhoneStore) -> None:
        self.store = store
        self._phones: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()

    def _phone(self, phone: str) -> dict[str, Any]:
        state = self._phones.get(phone)
        if state is None:
            state = self.store.load(phone)
            self._phones[phone] = state
        return state

    def add_record(self, phone: str, record: dict[str, Any], raw: bytes, out: PhoneOutput) -> None:
        """A record keyed by ``phone``: keep its newest version and send it where its
        phone and name point (a replay is sent again: its rows may never have been
        stored)."""
        state = self._phone(phone)
        rid = record_id(record["source"], record["entity"], record["source_key"])
        held = state["records"].get(rid)
        version = (record["event_time"], hashlib.blake2b(raw, digest_size=8).hexdigest())
        if held is not None and held["version"][0] > version[0]:
            return  # an older version: the newer one was sent already
        # Two versions stamped in the same second: the later one read wins, as in the merge
        # (a connector reads a source's versions in order, and a replay only the current).
        new = {
            "source": record["source"],
            "entity": record["entity"],
            "source_key": record["source_key"],
            "name": record.get("name") or "",
            "raw": raw,
            "version": list(version),
            "id_reason": record.get("id_reason") or "",
            "to": held["to"] if held else None,
            "why": held.get("why") if held else None,
        }
        state["records"][rid] = new
        self._dirty.add(phone)
        self._send(state, new, out, always=True, again=False)

    def claim(self, phone: str, resident: str, name: str, present: bool, out: PhoneOutput) -> None:
        """Resident ``resident`` has (or no longer has) ``phone``: send the phone's records
        whose destination that changes."""
        state = self._phone(phone)
        claims: dict[str, str] = state["claims"]
        before = claims.get(resident)
        if present:
            claims[resident] = name
        else:
            claims.pop(resident, None)
        if claims.get(resident) == before:
            return
        self._dirty.add(phone)
        for record in state["records"].values():
            self._send(state, record, out, always=False, again=True)

    def resend(self, phone: str, out: PhoneOutput) -> None:
        """Send every record of ``phone`` where it belongs (after a broker that forgot)."""
        state = self._phone(phone)
        for record in state["records"].values():
            self._send(state, record, out, always=True, again=True)

    def _send(
        self,
        state: dict[str, Any],
        record: dict[str, Any],
        out: PhoneOutput,
        *,
        always: bool,
        again: bool,
    ) -> None:
        decision = decide(state["claims"], record)
        before = record["to"]
        if before == decision.to and record.get("why") == decision.why and not always:
            return
        source, entity, key, raw = (record[n] for n in ("source", "entity", "source_key", "raw"))
        if before is not None and before != decision.to:
            out.send(Forward(source, entity, key, before, WITHDRAW, raw, again=again))
        record["to"] = decision.to
        record["why"] = decision.why
        if decision.to is not None:
            out.send(
                Forward(source, entity, key, decision.to, decision.rule, raw, decision.why, again)
            )
        else:  # again on a replay: the letter may never have been stored (the table keeps one)
            reason = f"{record['id_reason'] or '无有效身份证号'}; 手机号未能关联: {decision.why}"
            out.letters.append(Letter(source, entity, record["source_key"], reason, raw))

    def commit(self) -> None:
        """Persist the phones changed since the last commit."""
        if self._dirty:
            self.store.save({phone: self._phones[phone] for phone in self._dirty})
        self._phones.clear()
        self._dirty.clear()


def _open_rdict(path: Path) -> Rdict:
    path.parent.mkdir(parents=True, exist_ok=True)
    return Rdict(str(path))


class PhoneStore(PartitionDatabases[Rdict]):
    """Phone states in RocksDB, one database per partition of ``phones``
    (``data_dir/state/phones/p<N>``), opened by the process that owns it."""

    def __init__(self, root: Path, partitions: int) -> None:
        super().__init__(root, partitions, _open_rdict)

    def load(self, phone: str) -> dict[str, Any]:
        """A phone's state (empty for a phone never seen)."""
        state = self._store(partition_for(phone, self.partitions)).get(phone)
        return state if state else {"claims": {}, "records": {}}

    def save(self, states: dict[str, dict[str, Any]]) -> None:
        """Write changed phones, one atomic batch per partition."""
        batches: dict[int, WriteBatch] = {}
        for phone, state in states.items():
            partition = partition_for(phone, self.partitions)
            batches.setdefault(partition, WriteBatch()).put(phone, state)
        for partition, batch in batches.items():
            self._store(partition).write(batch)

    def phones(self, partition: int) -> list[str]:
        """Every phone of ``partition``."""
        keys = self._store(partition).keys()
        return [key for key in keys if isinstance(key, str)]
