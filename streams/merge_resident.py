"""Stage 2: person events merge into one record per resident.

Consumes ``person`` (PersonEvent envelopes, partitioned by resident).
Produces ``sink`` (ResidentRecord, EventRow and UnlinkedRecord rows in one
envelope per input envelope, same partition). State: per resident, the latest
version of every source record that names it (its *contributions*), in a
RocksDB store in ``data_dir`` (see :class:`ResidentStore`).

A resident is a pure function of its contributions (:func:`build_resident`),
so applying an event twice, or an older version after a newer one, changes
nothing: replays are absorbed here and the store's ReplacingMergeTree keeps
the newest computation (``version`` grows with every computation).
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from gridhub.streams.normalize import CHINA_TZ, birth_date_from_id, gender_from_id
from gridhub.streams.placement import Placement, Placer, placed
from rocksdict import Rdict, WriteBatch

from gridhub.reference import ReferenceData

DEFAULT_POLICY: dict[str, tuple[str, ...]] = {
    # field: sources in order of preference (identity.md, "default survivorship")
    "identity": (
        "police:syrk",
        "party:members",
        "civil:jzdx",
        "civil:roster_elderly",
        "civil:roster_disability",
        "hotline:tickets",
        "police:jq",
    ),
    "address": ("police:syrk", "civil:jzdx", "party:members"),
    "phone": ("police:syrk", "party:members", "civil:jzdx"),
    "phone_untimed": ("civil:roster_elderly", "civil:roster_disability"),
}
"""The default policy; a deployment may reorder it in configuration."""

Contribution = dict[str, Any]


@dataclass
class ResidentState:
    """Everything known about one resident."""

    contributions: dict[str, Contribution] = field(default_factory=dict)
    version: int = 0
    grid_code: str | None = None
    """The grid of the last stored computation (event rows of replays carry it)."""

    def apply(self, event: Contribution) -> bool:
        """Keep the newest version of the event's source record; True if anything changed.

        The state keeps what survivorship needs, not the record's payload: a
        digest of it tells versions of the same second apart.
        """
        key = _contribution_key(event)
        digest = _digest(event)
        event_time = event["event_time"].timestamp()
        current = self.contributions.get(key)
        if current is not None:
            if current["event_time"] > event_time:
                return False
            if current["event_time"] == event_time and current["digest"] == digest:
                return False
        # The state is pickled on every change: plain str/float values only (datetime
        # objects cost three times as much), no payload, nothing that is None.
        slim = {
            name: value
            for name, value in event.items()
            if value is not None and name not in _NOT_KEPT
        }
        slim["event_time"] = event_time
        if event.get("phone_time") is not None:
            slim["phone_time"] = event["phone_time"].timestamp()
        if event.get("birth_date") is not None:
            slim["birth_date"] = event["birth_date"].isoformat()
        slim["digest"] = digest
        slim["origin"] = f"{event['source']}:{event['entity']}"
        slim["stamp"] = f"{event['source']}@{event['event_time'].isoformat()}"
        self.contributions[key] = slim
        return True

    def holds(self, event: Contribution) -> bool:
        """Whether this very version of the event's source record is the one kept.

        A replay of it changes nothing, but the merge emits the resident's row
        again: after a crash, the row built from it may never have been stored.
        """
        current = self.contributions.get(_contribution_key(event))
        return (
            current is not None
            and current["event_time"] == event["event_time"].timestamp()
            and current["digest"] == _digest(event)
        )

    def next_version(self) -> int:
        """A version above every earlier computation of this resident."""
        self.version = max(self.version + 1, time.time_ns())
        return self.version


_NOT_KEPT = frozenset({"payload", "ingested_at"})


def _contribution_key(event: Contribution) -> str:
    return f"{event['source']}:{event['entity']}:{event['source_key']}"


def _digest(event: Contribution) -> str:
    """Tells versions of one record stamped in the same second apart."""
    return hashlib.blake2b(event["payload"].encode("utf-8"), digest_size=8).hexdigest()


@functools.cache
def _ranks(order: tuple[str, ...]) -> dict[str, int]:
    return {name: index for index, name in enumerate(order)}


def _by_preference(
    contributions: Iterable[Contribution], order: tuple[str, ...]
) -> list[Contribution]:
    """Contributions from sources in ``order``, best first; newest first within a source."""
    rank = _ranks(order)
    eligible = [c for c in contributions if c["origin"] in rank]
    if len(eligible) > 1:
        eligible.sort(key=lambda c: (rank[c["origin"]], -c["event_time"]))
    return eligible


def _stamp(c: Contribution) -> str:
    return str(c["stamp"])


def _winner(
    candidates: list[Contribution], name: str, fields: dict[str, str]
) -> tuple[Any, Contribution | None]:
    for candidate in candidates:
        value = candidate.get(name)
        if value not in (None, ""):
            fields[name] = _stamp(candidate)
            return value, candidate
    return None, None


def _conflicts(candidates: list[Contribution], name: str, winner: Any) -> list[str]:
    seen: list[str] = []
    for candidate in candidates:
        value = candidate.get(name)
        if value not in (None, "") and value != winner:
            seen.append(
                f"{name}: {winner} ({_stamp(candidates[0])}) vs {value} ({_stamp(candidate)})"
            )
    return seen


@dataclass
class MergeContext:
    """What building a resident needs besides its state."""

    ref: ReferenceData
    policy: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_POLICY))
    placer: Placer = field(init=False)

    def __post_init__(self) -> None:
        self.placer = Placer(self.ref)

    def place(self, c: Contribution) -> Placement:
        """Placement of a contribution: as the normaliser found it, or found here."""
        return placed(c) or self.placer(c)


def build_resident(
    resident_key: str, state: ResidentState, ctx: MergeContext, now: datetime, version: int
) -> dict[str, Any]:
    """The merged ResidentRecord of one resident (survivorship per field).

    A soft-deleted civil record was entered in error and contributes nothing
    (identity.md): no field, no source, no assistance.
    """
    contributions = [c for c in state.contributions.values() if not _withdrawn(c)]
    fields: dict[str, str] = {}
    identity = _by_preference(contributions, ctx.policy["identity"])
    id_number = next((c["id_number"] for c in contributions if c.get("id_number")), None)
    name, _ = _winner(identity, "name", fields)
    gender, _ = _winner(identity, "gender", fields)
    birth_text, _ = _winner(identity, "birth_date", fields)
    birth_date = date.fromisoformat(birth_text) if birth_text else None
    conflicts = _conflicts(identity, "name", name) + _conflicts(identity, "birth_date", birth_text)
    if id_number:
        if gender is None:
            gender = gender_from_id(id_number)
            fields["gender"] = "id_number"
        elif gender != gender_from_id(id_number):
            conflicts.append(f"gender: {gender} vs {gender_from_id(id_number)} (id_number)")
        id_birth = birth_date_from_id(id_number)
        if birth_date is None:
            birth_date = id_birth
            fields["birth_date"] = "id_number"
        elif birth_date != id_birth:
            conflicts.append(f"birth_date: {birth_date} vs {id_birth} (id_number)")
    phone = _phone(contributions, ctx, fields)
    home = _by_preference(contributions, ctx.policy["address"])
    police = [c for c in home if c["source"] == "police"]
    address_source = (
        police[0] if police else (max(home, key=lambda c: c["event_time"]) if home else None)
    )
    placement = ctx.place(address_source) if address_source else Placement(method="unplaced")
    if address_source:
        fields["address"] = _stamp(address_source)
        fields["grid_code"] = _stamp(address_source)
    syrk = _by_preference(contributions, ("police:syrk",))
    facts = syrk[0]["attributes"] if syrk else {}
    if syrk:
        fields["population_type"] = _stamp(syrk[0])
        fields["deregistered"] = _stamp(syrk[0])
    return {
        "resident_key": resident_key,
        "id_number": id_number,
        "name": name or "",
        "gender": gender or "",
        "birth_date": birth_date,
        "phone": phone,
        "grid_code": placement.grid_code,
        "community_code": placement.community_code,
        "address": (address_source or {}).get("address") or "",
        "placement": placement.method,
        "population_type": facts.get("population_type", ""),
        "deregistered": facts.get("deregistered") == "1",
        **_membership(contributions, fields),
        "assistance": _assistance(contributions, now),
        "hotline_tickets": sum(1 for c in contributions if c["entity"] == "tickets"),
        "hotline_open": sum(
            1 for c in contributions if c["entity"] == "tickets" and c["attributes"]["open"] == "1"
        ),
        "incidents": sum(1 for c in contributions if c["entity"] == "jq"),
        "sources": sorted({c["source"] for c in contributions}),
        "field_sources": fields,
        "conflicts": conflicts,
        "version": version,
        "updated_at": now,
    }


def _phone(contributions: list[Contribution], ctx: MergeContext, fields: dict[str, str]) -> Any:
    """Most recent timed observation; an untimed roster phone only when none exists."""
    timed = [c for c in _by_preference(contributions, ctx.policy["phone"]) if c.get("phone")]
    if timed:
        best = max(timed, key=lambda c: c.get("phone_time") or c["event_time"])
        fields["phone"] = _stamp(best)
        return best["phone"]
    value, _ = _winner(_by_preference(contributions, ctx.policy["phone_untimed"]), "phone", fields)
    return value


def _membership(contributions: list[Contribution], fields: dict[str, str]) -> dict[str, Any]:
    """Party membership, branch and 双报到 from the newest party member record (an
    active member is ``在册``; identity.md: party-building wins these fields)."""
    members = [c for c in contributions if c["entity"] == "members"]
    if not members:
        return {"is_party_member": False, "party_branch": "", "double_report_community": None}
    newest = max(members, key=lambda c: c["event_time"])
    facts = newest["attributes"]
    active = facts.get("status") == "在册"
    for name in ("is_party_member", "party_branch", "double_report_community"):
        fields[name] = _stamp(newest)
    return {
        "is_party_member": active,
        "party_branch": facts.get("branch_name", "") if active else "",
        "double_report_community": (facts.get("report_community") or None) if active else None,
    }


def _withdrawn(c: Contribution) -> bool:
    """A soft-deleted civil record (``jzdx.deleted``)."""
    return bool(c["source"] == "civil" and c.get("attributes", {}).get("deleted") == "1")


def _assistance(contributions: list[Contribution], now: datetime) -> list[str]:
    """Current assistance (outputs.md): every ``jzdx`` type not ended (``jsrq`` empty or
    after today, China time). Evaluated when the resident is computed."""
    today = now.astimezone(CHINA_TZ).date().isoformat()
    return sorted(
        {
            c["attributes"]["assistance_type"]
            for c in contributions
            if c["entity"] == "jzdx"
            and (not c["attributes"].get("end") or c["attributes"]["end"] > today)
        }
    )


UNLINKED_WHY = "无有效身份证号且无唯一手机号 (no valid ID number and no unique phone)"


class ResidentMerger:
    """Applies person events to resident states and says which rows to store.

    States changed since the last :meth:`commit` stay in memory; they are
    written to the state store only once the rows built from them are stored
    (or, from a merge process, accepted by Kafka). A crash before that replays
    the events onto the old states, which rebuilds the same rows; a crash after
    it replays them onto states that hold them already, and a replay of a
    resident's current version emits its row again. Either way no resident row
    is skipped.
    """

    def __init__(self, store: StateStore, ctx: MergeContext) -> None:
        self.store = store
        self.ctx = ctx
        self._states: dict[str, ResidentState] = {}
        self._dirty: set[str] = set()

    def _state(self, key: str) -> ResidentState:
        state = self._states.get(key)
        if state is None:
            state = self.store.load([key])[key]
            self._states[key] = state
        return state

    def merge(self, events: list[Contribution]) -> list[tuple[str, dict[str, Any]]]:
        """Apply one envelope's events; returns (schema name, row) pairs to store.

        Emits the resident row of every resident that changed or got a replay
        of its current version (see :meth:`ResidentState.holds`), and one event
        row per event (a replayed event yields the same event row again).
        """
        now = utc_now()
        changed: dict[str, None] = {}  # ordered, and O(1) membership
        for e in events:
            key = e["resident_key"]
            if not key:
                continue
            if key in changed:
                self._states[key].apply(e)
                continue
            state = self._state(key)
            if state.apply(e) or state.holds(e):
                changed[key] = None
        out: list[tuple[str, dict[str, Any]]] = []
        for key in changed:
            state = self._states[key]
            resident = build_resident(key, state, self.ctx, now, state.next_version())
            state.grid_code = resident["grid_code"]
            out.append(("ResidentRecord", resident))
        self._dirty.update(changed)
        for e in events:
            key = e["resident_key"]
            if key:
                grid_code = self._states[key].grid_code
            else:
                placement = self.ctx.place(e)
                grid_code = placement.grid_code
                out.append(
                    (
                        "UnlinkedRecord",
                        {
                            "source": e["source"],
                            "entity": e["entity"],
                            "source_key": e["source_key"],
                            "event_time": e["event_time"],
                            "why": UNLINKED_WHY,
                            "grid_code": grid_code,
                            "community_code": placement.community_code,
                            "payload": e["payload"],
                            "updated_at": now,
                        },
                    )
                )
            out.append(
                (
                    "EventRow",
                    {
                        "source": e["source"],
                        "entity": e["entity"],
                        "source_key": e["source_key"],
                        "event_time": e["event_time"],
                        "ingested_at": e["ingested_at"],
                        "resident_key": key,
                        "grid_code": grid_code,
                        "payload": e["payload"],
                    },
                )
            )
        return out

    def commit(self) -> None:
        """Persist the states whose rows are now stored; start a new batch."""
        if self._dirty:
            self.store.save({key: self._states[key] for key in self._dirty})
        self._states.clear()
        self._dirty.clear()


class StateStore(Protocol):
    """Where resident states persist between batches."""

    def load(self, keys: Iterable[str]) -> dict[str, ResidentState]:
        """States of these residents (new, empty states for unknown keys)."""
        ...

    def save(self, states: dict[str, ResidentState]) -> None:
        """Write changed states atomically."""
        ...


class ResidentStore:
    """Resident states in RocksDB under ``data_dir/state``.

    The store survives a crash of the worker and of the embedded broker (which
    forgets everything), so state never depends on restoring a changelog from
    a broker whose ListOffsets may be short of the log end.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(path))

    def load(self, keys: Iterable[str]) -> dict[str, ResidentState]:
        """States of these residents (new, empty states for unknown keys)."""
        out: dict[str, ResidentState] = {}
        for key in keys:
            raw = self._db.get(key)
            out[key] = (
                ResidentState(contributions=raw["c"], version=raw["v"], grid_code=raw["g"])
                if raw
                else ResidentState()
            )
        return out

    def save(self, states: dict[str, ResidentState]) -> None:
        """Write changed states in one atomic batch."""
        batch = WriteBatch()
        for key, state in states.items():
            batch.put(key, {"c": state.contributions, "v": state.version, "g": state.grid_code})
        self._db.write(batch)

    def close(self) -> None:
        """Flush and close."""
        self._db.close()


def utc_now() -> datetime:
    """Now, UTC."""
    return datetime.now(UTC)
