"""How people write a building's address, and how they miss it.

Every variant that ``render_variant`` produces must match the building's
standard address or one of its aliases after the normalisation the spec
promises (reference-data.md: full-width to half-width, Chinese numerals to
digits, 栋/幢/号楼/座 alike, county and town prefixes optional, a trailing unit
or room ignored). ``nonmatching_address`` produces text that matches nothing.
The generator records which one it wrote instead of re-parsing the text.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from gridhub.simulators.names import VILLAGE_NAMES

if TYPE_CHECKING:
    from gridhub.simulators.geography import Building

CN_DIGITS = "零一二三四五六七八九"
UNIT_WORDS = ("栋", "幢", "号楼", "座")
TRAILERS = ("二单元302室", "2单元", "302室", "一单元501室", "3单元1201室", "四单元")

# One entry per way of writing a building that the spec admits.
VARIANT_KINDS = (
    "standard",
    "no_county",
    "no_prefix",
    "county_only",
    "unit_word",
    "chinese_numeral",
    "full_width",
    "trailing_unit",
    "alias",
    "alias_with_town",
)


def chinese_number(n: int) -> str:
    """Writes 1..99 in Chinese numerals (``12`` -> ``十二``)."""
    if not 0 < n < 100:
        raise ValueError(f"only 1..99 are written in words here, got {n}")
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else CN_DIGITS[tens] + "十")
    return head + ("" if ones == 0 else CN_DIGITS[ones])


def full_width(text: str) -> str:
    """Turns ASCII digits into their full-width forms (``18`` -> ``１８``)."""
    return text.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})


def building_text(
    b: Building,
    *,
    county: bool = True,
    town: bool = True,
    unit_word: str = "栋",
    numeral: bool = False,
) -> str:
    """The standard address, with the optional parts chosen by the caller."""
    number = chinese_number(b.building_no) if numeral else str(b.building_no)
    prefix = (b.county_name if county else "") + (b.town_name if town else "")
    return f"{prefix}{b.road}{b.number}号{b.estate}{number}{unit_word}"


def alias_texts(b: Building) -> tuple[str, str, str]:
    """Names people actually use for the building, as listed in addresses.csv."""
    base = b.estate.removesuffix("小区")
    return (
        f"{b.estate}{b.building_no}号楼",
        f"{b.road}{b.number}号{b.building_no}幢",
        f"{base}小区{chinese_number(b.building_no)}栋",
    )


def render_variant(b: Building, kind: str, rng: random.Random) -> str:
    """One free-text way of writing ``b`` that still matches it."""
    if kind == "standard":
        return building_text(b)
    if kind == "no_county":
        return building_text(b, county=False)
    if kind == "no_prefix":
        return building_text(b, county=False, town=False)
    if kind == "county_only":
        return building_text(b, town=False)
    if kind == "unit_word":
        return building_text(b, unit_word=rng.choice(UNIT_WORDS[1:]))
    if kind == "chinese_numeral":
        return building_text(b, county=rng.random() < 0.5, numeral=True)
    if kind == "full_width":
        return full_width(building_text(b, county=rng.random() < 0.5))
    if kind == "trailing_unit":
        return building_text(b, county=rng.random() < 0.5) + rng.choice(TRAILERS)
    if kind == "alias":
        return rng.choice(alias_texts(b))
    if kind == "alias_with_town":
        town: str = b.town_name
        return town + rng.choice(alias_texts(b)) + rng.choice(("", *TRAILERS))
    raise ValueError(f"unknown address variant {kind!r}")


def random_variant(b: Building, rng: random.Random) -> str:
    """A matching variant of a random kind."""
    return render_variant(b, rng.choice(VARIANT_KINDS), rng)


def nonmatching_address(b: Building, rng: random.Random) -> str:
    """Text near the building that matches no standard address or alias."""
    if rng.random() < 0.5:
        village = rng.choice(VILLAGE_NAMES)
        return f"{b.town_name}{village}村{rng.randint(1, 12)}组{rng.randint(1, 80)}号"
    return f"{b.town_name}{b.road}{b.number}号{b.estate}车库"


def vague_address(b: Building, rng: random.Random) -> str:
    """What a caller says when they only roughly know where they are."""
    return rng.choice((f"{b.road}{b.number}号附近", f"{b.estate}门口", f"{b.road}{b.estate}旁边"))
