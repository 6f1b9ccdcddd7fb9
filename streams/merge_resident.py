"""Stage 2: person events merge into one record per resident.

Consumes ``person`` (PersonEvent envelopes, partitioned by resident).
Produces ``sink`` (ResidentRecord, EventRow and UnlinkedRecord rows in one
envelope per input envelope, same partition) and ``phones`` (PhoneClaims: the
phones each resident's own records show, for rule 2). State: per resident, the
latest version of every source record that names it (its *contributions*) and
the phones it claimed, in a RocksDB store in ``data_dir`` (see
:class:`ResidentStore`). Copies from the phone stage may withdraw a record: its
contribution leaves the resident, or its unlinked row is written deleted.

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
"""The default policy; a deployment may reorder it in configuration (``[survivorship]``)."""


def policy_with(overrides: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """The default policy with a deployment's lists in place of the defaults."""
    return {**DEFAULT_POLICY, **overrides}


Contribution = dict[str, Any]


@dataclass
class ResidentState:
    """Everything known about one resident."""

    contributions: dict[str, Contribution] = field(default_factory=dict)
    version: int = 0
    placement: tuple[str | None, str | None, str] | None = None
    """Grid, community and method of the last stored computation (a reference reload
    re-emits only the residents whose placement it changes)."""
    claimed: dict[str, str] = field(default_factory=dict)
    """The phones the phone stage was told are this resident's: phone -> name."""
    left_grids: list[str | None] = field(default_factory=list)
    """Grids this resident's rows were stored under before its current one (None:
    unplaced); every row built sends a GridDeparture for each (see :meth:`departures`)."""

    def departures(
        self, key: str, before: str | None, resident: dict[str, Any]
    ) -> list[tuple[str, dict[str, Any]]]:
        """GridDepartures hiding this resident in every grid it was stored in but is not
        in now (``grid.resident_by_grid``), with the new row's version.

        All of them, every time, not only the grid just left: a row lost with the
        embedded broker is built again from a state that already records the move.
        """
        grid = resident["grid_code"]
        if before != grid and before not in self.left_grids:
            self.left_grids.append(before)
        self.left_grids = [left for left in self.left_grids if left != grid]
        return [
            (
                "GridDeparture",
                {
                    "resident_key": key,
                    "grid_code": left,
                    "version": resident["version"],
                    "updated_at": resident["updated_at"],
                    "is_deleted": 1,
                },
            )
            for left in self.left_grids
        ]

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


_NOT_KEPT = frozenset({"payload", "ingested_at", "why", "withdraw", "again"})


def _contribution_key(event: Contribution) -> str:
    """One contribution per source record; a roster lists a person once per month (its rows
    have no key of their own, and a re-drop of the month replaces the listing)."""
    if event["entity"] in ROSTER_ENTITIES:
        return f"{event['source']}:{event['entity']}:{event['attributes']['month']}"
    return f"{event['source']}:{event['entity']}:{event['source_key']}"


ROSTER_ENTITIES = frozenset({"roster_elderly", "roster_disability"})
AREA_FACTS = frozenset({"activities"})
"""Records about a grid, not a person (party activities count where their party grid maps):
an event row placed in its grid, never an unlinked record waiting for a resident."""

Edition = dict[str, Any]
"""The newest roster edition of one allowance: ``month``, ``file_time`` (epoch seconds),
``sha256`` and ``file_name``."""


def edition_of(record: dict[str, Any]) -> Edition:
    """A RosterEdition record as the state keeps it."""
    return {
        "month": record["month"],
        "file_time": record["file_time"].timestamp(),
        "sha256": record["file_sha256"],
        "file_name": record["file_name"],
    }


def _edition_order(edition: Edition) -> tuple[str, float, str]:
    """Newer months win; within a month, the later drop (then the digest, so every order of
    arrival agrees)."""
    return (edition["month"], edition["file_time"], edition["sha256"])


def listing_of(c: Contribution) -> tuple[str, str] | None:
    """(allowance, month) of a roster contribution, else None."""
    if c["entity"] not in ROSTER_ENTITIES:
        return None
    return (c["attributes"]["allowance"], c["attributes"]["month"])


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
    resident_key: str,
    state: ResidentState,
    ctx: MergeContext,
    now: datetime,
    version: int,
    editions: dict[str, Edition] | None = None,
) -> dict[str, Any]:
    """The merged ResidentRecord of one resident (survivorship per field).

    A soft-deleted civil record was entered in error and contributes nothing
    (identity.md): no field, no source, no assistance. ``editions`` are the
    newest roster editions (allowance -> edition) the resident's partition knows.
    """
    contributions = [c for c in state.contributions.values() if not _withdrawn(c)]
    fields: dict[str, str] = {}
    # A record linked by phone was linked because its name does not contradict (it may be
    # only 王先生): it is evidence, and neither names the resident nor raises a conflict.
    named = [c for c in contributions if c.get("link_rule") != "phone"]
    identity = _by_preference(named, ctx.policy["identity"])
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
        "assistance": _assistance(contributions, now, editions or {}),
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


def _assistance(
    contributions: list[Contribution], now: datetime, editions: dict[str, Edition]
) -> list[str]:
    """Current assistance (outputs.md): every ``jzdx`` type not ended (``jsrq`` empty or
    after today, China time), evaluated when the resident is computed; and a roster's
    allowance when the newest edition of that roster lists the person."""
    today = now.astimezone(CHINA_TZ).date().isoformat()
    current = {
        c["attributes"]["assistance_type"]
        for c in contributions
        if c["entity"] == "jzdx"
        and (not c["attributes"].get("end") or c["attributes"]["end"] > today)
    }
    for c in contributions:
        listing = listing_of(c)
        if listing is None:
            continue
        edition = editions.get(listing[0])
        if (
            edition is not None
            and edition["month"] == listing[1]
            and edition["sha256"] == c["attributes"]["file_sha256"]
        ):
            current.add(listing[0])
    return sorted(current)


UNLINKED_WHY = "无有效身份证号且无可用手机号 (no valid ID number and no usable phone)"
"""Why a record waits unlinked when the phone stage did not see it (it has no phone)."""


def claimed_phones(
    state: ResidentState, policy: dict[str, tuple[str, ...]], name: str
) -> dict[str, str]:
    """The phones a resident's own person records show (those the phone policy reads,
    linked by ID number): what rule 2 may link other records by. A phone only a record
    linked by phone shows is not claimed, so a link never makes its own evidence."""
    origins = set(policy["phone"]) | set(policy["phone_untimed"])
    return {
        c["phone"]: name
        for c in state.contributions.values()
        if c.get("phone")
        and c["origin"] in origins
        and c.get("link_rule") != "phone"
        and not _withdrawn(c)
    }


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
        self._editions: dict[int, dict[str, Edition]] = {}
        self._dirty_editions: set[int] = set()
        self._placed_with: dict[int, str] = {}
        """Partitions known to be placed with the map in use (checked once per process)."""
        self._dirty_placements: set[int] = set()
        self._forget: dict[int, list[str]] = {}
        """Applied end-date index entries, removed once the rows built are safe."""
        self._claims: list[dict[str, Any]] = []
        """PhoneClaims of this batch, for the phone stage (see :meth:`take_claims`)."""

    def _editions_of(self, partition: int) -> dict[str, Edition]:
        editions = self._editions.get(partition)
        if editions is None:
            editions = self.store.load_editions(partition)
            self._editions[partition] = editions
        return editions

    def _build(self, key: str, now: datetime) -> list[tuple[str, dict[str, Any]]]:
        """The resident's row (with the roster editions of its own partition), and the
        departures from grids it left."""
        state = self._states[key]
        editions = self._editions_of(self.store.partition_of(key))
        resident = build_resident(key, state, self.ctx, now, state.next_version(), editions)
        before = state.placement
        state.placement = (resident["grid_code"], resident["community_code"], resident["placement"])
        claimed = claimed_phones(state, self.ctx.policy, resident["name"])
        if claimed != state.claimed:
            for phone, name in claimed.items():
                if state.claimed.get(phone) != name:
                    self._claims.append(_claim(phone, key, name, present=True))
            for phone in state.claimed.keys() - claimed.keys():
                self._claims.append(_claim(phone, key, "", present=False))
            state.claimed = claimed
        rows: list[tuple[str, dict[str, Any]]] = [("ResidentRecord", resident)]
        if before is not None:
            rows.extend(state.departures(key, before[0], resident))
        return rows

    def take_claims(self) -> list[dict[str, Any]]:
        """The PhoneClaims of the batch in hand; sent before :meth:`commit` saves the
        states, so a crash in between sends them again."""
        claims, self._claims = self._claims, []
        return claims

    def claims_of(self, partition: int) -> list[dict[str, Any]]:
        """Every phone claim of ``partition``'s residents as saved: sent again when a
        broker that keeps nothing (the embedded one) may have lost them."""
        keys = self.store.resident_keys(partition)
        return [
            _claim(phone, key, name, present=True)
            for key, state in self.store.load(keys).items()
            for phone, name in state.claimed.items()
        ]

    def expire(self, partition: int) -> list[tuple[str, dict[str, Any]]]:
        """Rebuild the residents of ``partition`` whose assistance ended since they were
        last built (``jsrq`` reached, China time): no record arrives when that happens,
        so the merge looks the dates up itself (once a minute; see ``topology.py``)."""
        today = utc_now().astimezone(CHINA_TZ).date().isoformat()
        entries = self.store.ending_by(partition, today)
        if not entries:
            return []
        now = utc_now()
        residents = dict.fromkeys(resident for _, resident in entries)
        rows = []
        for key in residents:
            self._state(key)
            rows.extend(self._build(key, now))
        self._dirty.update(residents)
        self._forget.setdefault(partition, []).extend(index for index, _ in entries)
        return rows

    def use_reference(self, ref: ReferenceData) -> bool:
        """Place with ``ref`` from now on; True when it differs from the map in use.

        Residents already stored keep their grid until :meth:`ensure_placed` runs for
        their partition (on its next batch, or on the reload's control record).
        """
        if ref.fingerprint == self.ctx.ref.fingerprint:
            return False
        self.ctx = MergeContext(ref, self.ctx.policy)
        return True

    def ensure_placed(self, partition: int) -> list[tuple[str, dict[str, Any]]]:
        """Re-place ``partition``'s residents if they were placed with another grid map;
        returns the rows of those whose grid, community or placement method changed.

        Only they change (``gridhub reference reload``: "affected residents and both
        areas change, nothing else does"). A partition without a recorded map yet is
        placed with the one in use (its residents were built with it).
        """
        fingerprint = self.ctx.ref.fingerprint
        if self._placed_with.get(partition) == fingerprint:
            return []
        before = self.store.placed_with(partition)
        self._placed_with[partition] = fingerprint
        if before == fingerprint:
            return []
        self._dirty_placements.add(partition)
        if before is None:
            return []
        now = utc_now()
        editions = self._editions_of(partition)
        rows: list[tuple[str, dict[str, Any]]] = []
        for key in self.store.resident_keys(partition):
            state = self._state(key)
            resident = build_resident(key, state, self.ctx, now, 0, editions)
            moved = (resident["grid_code"], resident["community_code"], resident["placement"])
            if state.placement is not None and tuple(state.placement) == moved:
                continue
            resident["version"] = state.next_version()
            was = state.placement
            state.placement = moved
            self._dirty.add(key)
            rows.append(("ResidentRecord", resident))
            if was is not None:
                rows.extend(state.departures(key, was[0], resident))
        return rows

    def apply_editions(
        self, partition: int, records: list[dict[str, Any]]
    ) -> list[tuple[str, dict[str, Any]]]:
        """Apply RosterEdition records that reached ``partition``; returns the resident rows
        of everyone listed in the edition replaced or in the new one.

        An older edition than the one held changes nothing. The same edition again (a
        replay) rebuilds its residents' rows, like a replayed record does: after a crash
        they may never have been stored.
        """
        editions = self._editions_of(partition)
        affected: dict[str, None] = {}
        for record in records:
            new = edition_of(record)
            allowance = record["allowance"]
            held = editions.get(allowance)
            if held is not None and _edition_order(new) < _edition_order(held):
                continue
            months = {new["month"], held["month"]} if held is not None else {new["month"]}
            if held != new:
                editions[allowance] = new
                self._dirty_editions.add(partition)
            for month in months:
                affected.update(dict.fromkeys(self.store.listed(partition, allowance, month)))
                affected.update(
                    (key, None)
                    for key, state in self._states.items()
                    if self.store.partition_of(key) == partition
                    and any(
                        listing_of(c) == (allowance, month) for c in state.contributions.values()
                    )
                )
        now = utc_now()
        rows: list[tuple[str, dict[str, Any]]] = []
        for key in affected:
            self._state(key)
            rows.extend(self._build(key, now))
        self._dirty.update(affected)
        return rows

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
            state = self._state(key)
            if e.get("withdraw"):  # the phone stage took the record back (see phone_link)
                if state.contributions.pop(_contribution_key(e), None) is not None:
                    changed[key] = None
                continue
            if key in changed:
                state.apply(e)
                continue
            if state.apply(e) or state.holds(e):
                changed[key] = None
        out: list[tuple[str, dict[str, Any]]] = []
        for key in changed:
            out.extend(self._build(key, now))
        self._dirty.update(changed)
        for e in events:
            key = e["resident_key"]
            if e.get("withdraw"):
                if not key:  # the record waits no longer: it linked late
                    out.append(("UnlinkedRecord", _unlinked_row(e, None, None, deleted=True)))
                continue
            # An event row carries where the record itself is placed: the same whatever
            # order the records came in (a linked record counts in its resident's grid,
            # which grid.resident holds).
            placement = self.ctx.place(e)
            grid_code = placement.grid_code
            if not key and e["entity"] not in AREA_FACTS:
                out.append(
                    (
                        "UnlinkedRecord",
                        _unlinked_row(e, grid_code, placement.community_code, deleted=False),
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
                        "link_rule": e["link_rule"],
                    },
                )
            )
        return out

    def commit(self) -> None:
        """Persist the states whose rows are now stored; start a new batch."""
        if self._dirty:
            self.store.save({key: self._states[key] for key in self._dirty})
        for partition in self._dirty_editions:
            self.store.save_editions(partition, self._editions[partition])
        for partition in self._dirty_placements:
            self.store.save_placed_with(partition, self._placed_with[partition])
        self._dirty_placements.clear()
        for partition, keys in self._forget.items():
            self.store.forget(partition, keys)
        self._forget.clear()
        self._states.clear()
        self._dirty.clear()
        self._editions.clear()
        self._dirty_editions.clear()
        self._claims.clear()


def _claim(phone: str, key: str, name: str, *, present: bool) -> dict[str, Any]:
    return {"phone": phone, "resident_key": key, "name": name, "present": present}


def _unlinked_row(
    e: Contribution, grid_code: str | None, community_code: str | None, *, deleted: bool
) -> dict[str, Any]:
    """A ``grid.unlinked`` row, stamped with when the record was decided (a later decision
    about the same record replaces it, whichever partition is merged first)."""
    return {
        "source": e["source"],
        "entity": e["entity"],
        "source_key": e["source_key"],
        "event_time": e["event_time"],
        "why": e.get("why") or UNLINKED_WHY,
        "grid_code": grid_code,
        "community_code": community_code,
        "payload": e["payload"],
        "updated_at": e["ingested_at"],
        "is_deleted": int(deleted),
    }


class StateStore(Protocol):
    """Where resident states persist between batches, per partition of ``person``."""

    def load(self, keys: Iterable[str]) -> dict[str, ResidentState]:
        """States of these residents (new, empty states for unknown keys)."""
        ...

    def save(self, states: dict[str, ResidentState]) -> None:
        """Write changed states atomically (per partition)."""
        ...

    def partition_of(self, key: str) -> int:
        """The partition a resident's state belongs to."""
        ...

    def listed(self, partition: int, allowance: str, month: str) -> list[str]:
        """Residents of ``partition`` ever listed in that roster month."""
        ...

    def load_editions(self, partition: int) -> dict[str, Edition]:
        """The newest roster editions ``partition`` has applied."""
        ...

    def save_editions(self, partition: int, editions: dict[str, Edition]) -> None:
        """Keep ``partition``'s newest roster editions."""
        ...

    def resident_keys(self, partition: int) -> list[str]:
        """Every resident of ``partition``."""
        ...

    def ending_by(self, partition: int, day: str) -> list[tuple[str, str]]:
        """(index key, resident) of ``partition``'s assistance ending on ``day`` or before."""
        ...

    def forget(self, partition: int, keys: Iterable[str]) -> None:
        """Remove applied index entries of ``partition``."""
        ...

    def placed_with(self, partition: int) -> str | None:
        """Fingerprint of the reference data ``partition``'s residents were placed with."""
        ...

    def save_placed_with(self, partition: int, fingerprint: str) -> None:
        """Record the reference data ``partition``'s residents are now placed with."""
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
                ResidentState(
                    contributions=raw["c"],
                    version=raw["v"],
                    placement=raw.get("p"),
                    claimed=raw.get("k") or {},
                    left_grids=raw.get("g") or [],
                )
                if raw
                else ResidentState()
            )
        return out

    def save(self, states: dict[str, ResidentState]) -> None:
        """Write changed states in one atomic batch, with the roster listings they hold."""
        batch = WriteBatch()
        today = utc_now().astimezone(CHINA_TZ).date().isoformat()
        for key, state in states.items():
            record = {"c": state.contributions, "v": state.version}
            batch.put(
                key, {**record, "p": state.placement, "k": state.claimed, "g": state.left_grids}
            )
            for c in state.contributions.values():
                listing = listing_of(c)
                if listing is not None:
                    batch.put(_listing_key(*listing) + key, 1)
                end = _assistance_end(c)
                if end is not None and end > today:  # one that has ended needs no reminder
                    batch.put(f"{_ENDS}{end}\x1f{key}", 1)
        self._db.write(batch)

    def listed(self, allowance: str, month: str) -> list[str]:
        """Residents this database ever saw listed in a roster of ``allowance`` for ``month``
        (in any edition: whether an edition lists them is decided when they are built)."""
        prefix = _listing_key(allowance, month)
        keys: list[str] = []
        for key, _ in self._db.items(from_key=prefix):
            if not (isinstance(key, str) and key.startswith(prefix)):
                break
            keys.append(key[len(prefix) :])
        return keys

    def resident_keys(self) -> list[str]:
        """Every resident this database holds (its own records left out)."""
        keys = self._db.keys()
        return [k for k in keys if isinstance(k, str) and not k.startswith(_META)]

    def ending_by(self, day: str) -> list[tuple[str, str]]:
        """(index key, resident) of every assistance that ends on ``day`` (ISO) or before,
        as far as this database has not yet been told it was applied."""
        found: list[tuple[str, str]] = []
        for key, _ in self._db.items(from_key=_ENDS):
            if not (isinstance(key, str) and key.startswith(_ENDS)):
                break
            end, _, resident = key[len(_ENDS) :].partition("\x1f")
            if end > day:
                break
            found.append((key, resident))
        return found

    def forget(self, keys: Iterable[str]) -> None:
        """Remove index entries that have been applied."""
        batch = WriteBatch()
        for key in keys:
            batch.delete(key)
        self._db.write(batch)

    def placed_with(self) -> str | None:
        """Fingerprint of the reference data its residents were last placed with."""
        value = self._db.get(_REFERENCE_KEY)
        return value if isinstance(value, str) else None

    def save_placed_with(self, fingerprint: str) -> None:
        """Record the reference data its residents are now placed with."""
        self._db[_REFERENCE_KEY] = fingerprint

    def load_editions(self) -> dict[str, Edition]:
        """The newest roster edition of each allowance this database has applied."""
        editions: dict[str, Edition] = self._db.get(_EDITIONS_KEY) or {}
        return editions

    def save_editions(self, editions: dict[str, Edition]) -> None:
        """Keep the newest roster editions."""
        self._db[_EDITIONS_KEY] = editions

    def close(self) -> None:
        """Flush and close."""
        self._db.close()


_META = "\x00"
"""Keys of the store's own records start with this; resident keys never do."""
_EDITIONS_KEY = f"{_META}editions"
_REFERENCE_KEY = f"{_META}reference"
_ENDS = f"{_META}ends\x1f"
"""Index of assistance end dates: ``<_ENDS><YYYY-MM-DD>\x1f<resident>``, date-ordered."""


def _assistance_end(c: Contribution) -> str | None:
    """The end date (ISO) of a live ``jzdx`` contribution that has one, else None."""
    if c["entity"] != "jzdx" or _withdrawn(c):
        return None
    end = c["attributes"].get("end")
    return str(end) if end else None


def _listing_key(allowance: str, month: str) -> str:
    return f"{_META}roster\x1f{allowance}\x1f{month}\x1f"


def utc_now() -> datetime:
    """Now, UTC."""
    return datetime.now(UTC)
