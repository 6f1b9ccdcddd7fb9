"""Pure normalisers for identity evidence and addresses (spec: identity.md, reference-data.md).

Every source spells the same person differently: ID numbers with spaces, a lower-case ``x``,
full-width digits or the 15-digit pre-1999 form; phones with ``+86`` and dashes; names with
full-width characters and a choice of middle dots; addresses with Chinese numerals and
``号楼`` where the standard address says ``栋``. The stream stages compare records only after
these functions have brought them to one form.

Nothing here touches Kafka, Faust or a database: every function is pure (the ID check reads
the clock only when no ``today`` is given) so the stages, the reference loader and the tests
share exactly the same rules. When a value is unusable the result carries a stable,
bilingual reason string; the stages put it into dead letters, where clerks read it, and into
metrics, where it is counted, so the strings must not change casually.
"""

from __future__ import annotations

import operator
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Literal

__all__ = [
    "CHINA_TZ",
    "AddressKey",
    "IdReason",
    "IdResult",
    "PhoneKind",
    "PhoneReason",
    "PhoneResult",
    "birth_date_from_id",
    "china_local_to_utc",
    "gender_from_id",
    "id_check_character",
    "is_anonymous",
    "is_honorific_only",
    "names_compatible",
    "normalize_address",
    "normalize_id_number",
    "normalize_name",
    "normalize_phone",
    "split_address",
    "surname_of",
]

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
"""China local time: UTC+8 all year (no daylight saving since 1991)."""


def china_local_to_utc(naive: datetime) -> datetime:
    """Reads a database ``DATETIME`` (China local time, no zone) as an aware UTC instant.

    The police tables store ``gxsj``/``bjsj`` without a zone; treating them as UTC would
    shift every event by eight hours.

    Raises:
        ValueError: ``naive`` already carries a zone, so the caller mixed up its sources.
    """
    if naive.tzinfo is not None:
        raise ValueError(f"expected a naive China-local datetime, got {naive.isoformat()}")
    return naive.replace(tzinfo=CHINA_TZ).astimezone(UTC)


_today_cache: list[float | date] = [0.0, date.min]


def _today_in_china() -> date:
    """Today in China, read from the clock at most once a minute (hot path)."""
    now = time.monotonic()
    if now - float(_today_cache[0]) > 60.0:  # type: ignore[arg-type]
        _today_cache[:] = [now, datetime.now(CHINA_TZ).date()]
    return _today_cache[1]  # type: ignore[return-value]


# --- 公民身份号码 ------------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ASCII_ZERO_WEIGHT = 48 * sum(_ID_WEIGHTS)
_EARLIEST_BIRTH = date(1880, 1, 1)
_SCIENTIFIC = re.compile(r"[0-9]+(?:\.[0-9]*)?E[+-]?[0-9]+")
_ID_CHARS = re.compile(r"[0-9X]+")
_ID18 = re.compile(r"[0-9]{17}[0-9X]")
_ID15 = re.compile(r"[0-9]{15}")


class IdReason(StrEnum):
    """Why an ID number cannot identify anyone (stable strings: dead letters and metrics)."""

    MISSING = "公民身份号码为空 (ID number missing)"
    SCIENTIFIC = (
        "公民身份号码被表格软件改成科学计数法 (ID number mangled into scientific notation by a "
        "spreadsheet)"
    )
    CHARACTERS = "公民身份号码含非法字符 (ID number may hold only digits and a final X)"
    LENGTH = "公民身份号码位数错误 (ID number must have 18 characters, or 15 digits if pre-1999)"
    BIRTH_DATE = "公民身份号码出生日期不存在 (birth date in ID number does not exist)"
    BIRTH_DATE_RANGE = (
        "公民身份号码出生日期不合理 (birth date in ID number is in the future or before 1880)"
    )
    CHECK_CHARACTER = "公民身份号码校验位错误 (ID number check character is wrong)"


@dataclass(frozen=True, slots=True)
class IdResult:
    """A normalised ID number, or why there is none.

    Attributes:
        value: 18 characters, upper-case ``X``, no spaces; ``None`` when unusable.
        reason: why ``value`` is ``None``; ``None`` when the number is valid.
    """

    value: str | None
    reason: IdReason | None = None

    @property
    def valid(self) -> bool:
        """Whether the number may become a resident key."""
        return self.value is not None


def id_check_character(first17: str) -> str:
    """Computes the GB 11643 check character over the first 17 digits.

    Raises:
        ValueError: ``first17`` is not exactly 17 ASCII digits.
    """
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"expected 17 digits, got {first17!r}")
    # byte values are digit + 48: one C-level pass instead of 17 int() calls (hot path)
    total = sum(map(operator.mul, first17.encode("ascii"), _ID_WEIGHTS)) - _ASCII_ZERO_WEIGHT
    return _ID_CHECK_CHARS[total % 11]


def _compact(raw: str) -> str:
    """Full-width to half-width, all whitespace removed, ASCII letters upper-cased."""
    text = unicodedata.normalize("NFKC", raw)
    return "".join(ch for ch in text if not ch.isspace()).upper()


def _parse_birth_date(yyyymmdd: str) -> date | None:
    try:
        return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None


def normalize_id_number(raw: str | None, *, today: date | None = None) -> IdResult:
    """Brings a 公民身份号码 to its 18-character form, or says why it identifies no one.

    Accepts surrounding and inner spaces, full-width digits and ``Ｘ``, a lower-case ``x`` and
    the 15-digit form issued before 1999 (upgraded by inserting ``19`` before the year and
    appending the check character). Numbers starting with ``9`` (permanent-residence cards
    for foreigners) follow the same rules.

    Args:
        raw: the number as the source delivered it.
        today: the day that birth dates may not exceed; defaults to today in China.

    Returns:
        The normalised number, or ``value=None`` with the first rule it breaks.
    """
    if raw is None:
        return IdResult(None, IdReason.MISSING)
    # the common case, an already clean 18-character number, skips the Unicode work
    text = raw if len(raw) == 18 and raw.isascii() and raw.isalnum() else _compact(raw)
    text = text.upper()
    if not text:
        return IdResult(None, IdReason.MISSING)
    if _SCIENTIFIC.fullmatch(text):
        return IdResult(None, IdReason.SCIENTIFIC)
    if not _ID_CHARS.fullmatch(text):
        return IdResult(None, IdReason.CHARACTERS)
    if len(text) not in (15, 18):
        return IdResult(None, IdReason.LENGTH)
    if not (_ID18.fullmatch(text) or _ID15.fullmatch(text)):
        return IdResult(None, IdReason.CHARACTERS)
    first17 = text[:6] + "19" + text[6:] if len(text) == 15 else text[:17]
    born = _parse_birth_date(first17[6:14])
    if born is None:
        return IdResult(None, IdReason.BIRTH_DATE)
    if not _EARLIEST_BIRTH <= born <= (today or _today_in_china()):
        return IdResult(None, IdReason.BIRTH_DATE_RANGE)
    check = id_check_character(first17)
    if len(text) == 18 and text[17] != check:
        return IdResult(None, IdReason.CHECK_CHARACTER)
    return IdResult(first17 + check)


def _require_id18(id18: str) -> None:
    if not _ID18.fullmatch(id18):
        raise ValueError(f"expected a normalised 18-character ID number, got {id18!r}")


def gender_from_id(id18: str) -> Literal["男", "女"]:
    """Reads the gender from a normalised ID number: odd 17th digit male, even female.

    Raises:
        ValueError: ``id18`` is not in normalised 18-character form.
    """
    _require_id18(id18)
    return "男" if int(id18[16]) % 2 == 1 else "女"


def birth_date_from_id(id18: str) -> date:
    """Reads the birth date (characters 7-14) from a normalised ID number.

    Raises:
        ValueError: ``id18`` is not in normalised form or its date does not exist.
    """
    _require_id18(id18)
    born = _parse_birth_date(id18[6:14])
    if born is None:
        raise ValueError(f"ID number {id18!r} carries an impossible birth date")
    return born


# --- Phones --------------------------------------------------------------------------------

PhoneKind = Literal["mobile", "landline"]

_PHONE_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−()\[\]]+")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_LANDLINE = re.compile(r"0[1-9][0-9]{8,10}")
_LOCAL_NUMBER = re.compile(r"[2-9][0-9]{6,7}")


class PhoneReason(StrEnum):
    """Why a phone identifies no one (stable strings)."""

    MISSING = "missing"
    MASKED = "masked"
    NO_AREA_CODE = "landline without area code"
    MALFORMED = "not a mobile or landline number"


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """A normalised phone number (digits only), or why there is none.

    Attributes:
        value: 11-digit mobile or area code + number; ``None`` when unusable.
        kind: ``"mobile"`` or ``"landline"``; ``None`` when unusable.
        reason: why ``value`` is ``None``.
    """

    value: str | None
    kind: PhoneKind | None = None
    reason: PhoneReason | None = None


def normalize_phone(raw: str | None) -> PhoneResult:
    """Brings a phone to digits only and says whether it is a mobile or a landline.

    Strips ``+86``/``0086`` (and a bare ``86`` before a mobile), spaces, dashes and
    parentheses, after full-width to half-width. After an international prefix a landline
    has lost its trunk ``0``, which is put back. A number with ``*`` anywhere is masked and
    identifies no one.
    """
    if raw is None:
        return PhoneResult(None, reason=PhoneReason.MISSING)
    text = _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    if not text:
        return PhoneResult(None, reason=PhoneReason.MISSING)
    if "*" in text:
        return PhoneResult(None, reason=PhoneReason.MASKED)
    international = False
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            text, international = text[len(prefix) :], True
            break
    if not international and text.startswith("86") and _MOBILE.fullmatch(text[2:]):
        text = text[2:]
    if _MOBILE.fullmatch(text):
        return PhoneResult(text, "mobile")
    if international and text[:1] not in ("", "0"):
        text = "0" + text
    if _LANDLINE.fullmatch(text):
        return PhoneResult(text, "landline")
    if _LOCAL_NUMBER.fullmatch(text):
        return PhoneResult(None, reason=PhoneReason.NO_AREA_CODE)
    return PhoneResult(None, reason=PhoneReason.MALFORMED)


# --- Names ---------------------------------------------------------------------------------

_MIDDLE_DOT = "\u00b7"
# Dots typed between the parts of a minority name (维吾尔族, 藏族 ...): the Latin middle dot,
# the katakana middle dot and its half-width form, bullets, the full-width and ASCII full stop.
_NAME_DOTS = str.maketrans(
    dict.fromkeys("\u00b7\u0387\u2022\u2027\u2219\u22c5\u30fb\uff65\uff0e.", _MIDDLE_DOT)
)
_HONORIFICS = ("先生", "女士")
_ANONYMOUS = "匿名"
# 复姓: two-character surnames, so that 欧阳女士 matches 欧阳娜娜 and not 欧娜.
# fmt: off
_COMPOUND_SURNAMES = frozenset(
    (
        "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
        "宇文", "司徒", "夏侯", "轩辕", "令狐", "钟离", "端木", "独孤", "南宫", "西门",
        "百里", "呼延", "申屠", "太史", "澹台", "公冶", "濮阳", "淳于", "单于", "闻人",
        "万俟", "赫连", "拓跋", "司空", "东郭", "第五", "左丘", "公羊", "谷梁", "宗政",
        "仲孙", "羊舌", "微生", "梁丘", "段干", "乐正", "壤驷", "巫马", "漆雕", "亓官",
        "司寇", "子车", "颛孙", "公良", "拓拔",
    )
)
# fmt: on


def normalize_name(raw: str | None) -> str | None:
    """Trims a name, folds full-width to half-width and removes inner spaces.

    The middle dot of minority names (``买买提·艾力``) is kept, and its look-alikes
    (``・``, ``•``, ``．`` ...) become ``·``. Returns ``None`` when nothing is left.
    """
    if raw is None:
        return None
    text = raw
    while True:  # removing a space can let neighbours compose under NFKC: repeat until stable
        folded = unicodedata.normalize("NFKC", text.translate(_NAME_DOTS)).translate(_NAME_DOTS)
        folded = "".join(
            ch for ch in folded if not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc")
        )
        if folded == text:
            return folded or None
        text = folded


def is_anonymous(name: str | None) -> bool:
    """Whether the name says the person asked to stay anonymous (``匿名``)."""
    normalised = normalize_name(name)
    return normalised is not None and normalised.startswith(_ANONYMOUS)


def surname_of(name: str) -> str:
    """The surname of a normalised full name: a known 复姓 or else the first character."""
    if len(name) > 2 and name[:2] in _COMPOUND_SURNAMES:
        return name[:2]
    return name[:1]


def _honorific_surname(name: str) -> str | None:
    """The surname of ``王先生``/``欧阳女士``; ``None`` when the name is not only that."""
    for honorific in _HONORIFICS:
        if name.endswith(honorific):
            surname = name[: -len(honorific)]
            is_single = len(surname) == 1 and unicodedata.category(surname) == "Lo"
            if is_single or surname in _COMPOUND_SURNAMES:
                return surname
    return None


def is_honorific_only(name: str | None) -> bool:
    """Whether the name is only a surname and ``先生``/``女士`` (``王先生``)."""
    normalised = normalize_name(name)
    return normalised is not None and _honorific_surname(normalised) is not None


def names_compatible(a: str | None, b: str | None) -> bool:
    """Whether two names do not contradict each other (identity.md, rule 2).

    They are compatible when equal after normalisation, or when one is only a surname plus
    ``先生``/``女士`` and that surname is the other's surname. A missing name is not evidence
    and ``匿名`` is compatible with nothing: neither may confirm a link.
    """
    first, second = normalize_name(a), normalize_name(b)
    if first is None or second is None or is_anonymous(first) or is_anonymous(second):
        return False
    if first == second:
        return True
    first_honorific, second_honorific = _honorific_surname(first), _honorific_surname(second)
    if first_honorific is not None and second_honorific is None:
        return surname_of(second) == first_honorific
    if second_honorific is not None and first_honorific is None:
        return surname_of(first) == second_honorific
    return False


# --- Addresses -----------------------------------------------------------------------------

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUMERAL = re.compile("[" + "".join(_CN_DIGITS) + "".join(_CN_UNITS) + "]+")
_ASCII_LOWER_TO_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HASH_BUILDING = re.compile(r"(?<=[0-9A-Z])#楼?")
_BUILDING = "栋"
_BUILDING_WORDS = re.compile(r"(?<=[0-9A-Z])(?:号楼|幢|座|栋)")
_UNIT = r"[0-9东西南北中]+单元"
_FLOOR = r"[0-9]+[层楼]"
_AFTER_BUILDING = re.compile(rf"(?:{_UNIT})?(?:{_FLOOR})?(?:[0-9]+[室户号]?)?")
_ROOM_TAIL = re.compile(rf"(?:{_UNIT}(?:{_FLOOR})?(?:[0-9]+[室户号]?)?|(?:{_FLOOR})?[0-9]+[室户])$")
_BEFORE_PREFIX = re.compile(r"(?:[^0-9]{1,7}?(?:省|自治区))?(?:[^0-9]{1,7}?市)?")


@dataclass(frozen=True, slots=True)
class AddressKey:
    """A normalised address split into the administrative prefixes it named and the rest.

    Attributes:
        core: the address below the town, as matched against standard addresses.
        named: the county/town prefixes that were stripped, in the order written.
    """

    core: str
    named: tuple[str, ...]


def _cn_number(numeral: str) -> str:
    """``十八`` -> ``18``, ``二十三`` -> ``23``, ``一百零五`` -> ``105``, ``三〇二`` -> ``302``."""
    if not any(ch in _CN_UNITS for ch in numeral):
        return "".join(str(_CN_DIGITS[ch]) for ch in numeral)
    total, pending = 0, None
    for ch in numeral:
        if ch in _CN_UNITS:
            total += (1 if pending is None else pending) * _CN_UNITS[ch]
            pending = None
        elif _CN_DIGITS[ch] != 0:
            pending = _CN_DIGITS[ch]
    return str(total + (pending or 0))


def _clean_characters(text: str) -> str:
    """Full-width to half-width and only letters and numbers kept, until stable.

    Removing a separator can let neighbours compose under NFKC, and NFKC can produce new
    separators (``¼`` -> ``1⁄4``), so both steps repeat until nothing changes; this keeps
    :func:`normalize_address` idempotent on any input.
    """
    while True:
        cleaned = "".join(
            ch
            for ch in unicodedata.normalize("NFKC", text)
            if unicodedata.category(ch)[0] in ("L", "N")
        )
        if cleaned == text:
            return cleaned
        text = cleaned


def _strip_room(text: str) -> str:
    """Drops a trailing unit, floor or room (``2单元302室``): they all lie in one building."""
    building_at = max((match.end() for match in _BUILDING_WORDS.finditer(text)), default=-1)
    if building_at >= 0 and _AFTER_BUILDING.fullmatch(text[building_at:]):
        return text[:building_at]
    return _ROOM_TAIL.sub("", text)


def _strip_prefix(text: str, prefixes: Sequence[str]) -> tuple[str, str | None]:
    """Strips one leading county or town name, with a province/city written before it."""
    for prefix in prefixes:
        at = text.find(prefix)
        if at == 0 or (at > 0 and _BEFORE_PREFIX.fullmatch(text[:at])):
            return text[at + len(prefix) :], prefix
    return text, None


def split_address(text: str, prefixes: Sequence[str] = ()) -> AddressKey:
    """Normalises a free-text address and splits off the county/town names it starts with.

    Steps: full-width to half-width; ``3#楼`` read as ``3栋``; whitespace and punctuation
    removed; Chinese numerals to digits; ``栋/幢/号楼/座`` after a number or letter all become
    ``栋``; a trailing unit, floor or room ignored; leading county/town names (and a
    province/city before them) removed. Vague tails such as ``附近`` are kept, so
    ``幸福路18号附近`` never equals a building's address.

    Args:
        text: the address as written.
        prefixes: county and town names, already normalised by this function and ordered
            longest first (``ReferenceData.address_prefixes``).
    """
    result = unicodedata.normalize("NFKC", text).translate(_ASCII_LOWER_TO_UPPER)
    result = _HASH_BUILDING.sub(_BUILDING, result)
    result = _clean_characters(result).translate(_ASCII_LOWER_TO_UPPER)
    result = _CN_NUMERAL.sub(lambda match: _cn_number(match.group()), result)
    result = _BUILDING_WORDS.sub(_BUILDING, result)
    named: list[str] = []
    while True:
        stripped, prefix = _strip_prefix(_strip_room(result), prefixes)
        if prefix is not None:
            named.append(prefix)
        if stripped == result:
            return AddressKey(stripped, tuple(named))
        result = stripped


def normalize_address(text: str, prefixes: Sequence[str] = ()) -> str:
    """The comparable form of an address (see :func:`split_address`); idempotent."""
    return split_address(text, prefixes).core
