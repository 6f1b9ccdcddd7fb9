"""公民身份号码 (GB 11643-1999) maker and checker for the simulators.

The synthetic county is the hub's ground truth, so it must not borrow the
hub's own normalisation code: a bug shared by both sides would never show.
This module is a second, independent implementation of the rules in
``spec/identity.md``, kept deliberately small.
"""

from __future__ import annotations

from datetime import date
from operator import mul

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
_ASCII_ZERO_SUM = ord("0") * sum(WEIGHTS)


def check_char(first17: str) -> str:
    """Returns the GB 11643 check character for the first 17 digits."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError(f"need 17 digits, got {first17!r}")
    # Weighted sum over the ASCII codes, minus what the "0" offsets contribute.
    return CHECK_CHARS[(sum(map(mul, first17.encode(), WEIGHTS)) - _ASCII_ZERO_SUM) % 11]


def make_id(area: str, birth: date, sequence: int) -> str:
    """Builds a valid 18-character number.

    Args:
        area: 6 digits; ``9`` followed by 5 digits for a permanent-residence
            card of a foreigner.
        birth: the birth date written into the number.
        sequence: 0..999; odd for men, even for women.
    """
    if len(area) != 6 or not area.isdigit() or not 0 <= sequence <= 999:
        raise ValueError(f"bad area {area!r} or sequence {sequence}")
    first17 = f"{area}{birth.year:04d}{birth.month:02d}{birth.day:02d}{sequence:03d}"
    return first17 + check_char(first17)


def to_legacy15(id18: str) -> str:
    """Returns the 15-digit form issued before 1999 (only for 19xx births)."""
    if id18[6:8] != "19":
        raise ValueError(f"only people born in the 1900s have a 15-digit number: {id18}")
    return id18[:6] + id18[8:17]


def upgrade15(id15: str) -> str:
    """Returns the 18-character form of a 15-digit number."""
    if len(id15) != 15 or not id15.isdigit():
        raise ValueError(f"need 15 digits, got {id15!r}")
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + check_char(first17)


def birth_date_of(id18: str) -> date:
    """Reads the birth date; raises ``ValueError`` when it is impossible."""
    return date(int(id18[6:10]), int(id18[10:12]), int(id18[12:14]))


def is_valid(id_number: str) -> bool:
    """True for a normalised (18 characters, upper-case ``X``) valid number."""
    if len(id_number) != 18 or not (id_number.isascii() and id_number[:17].isdigit()):
        return False
    try:
        birth_date_of(id_number)
    except ValueError:
        return False
    return check_char(id_number[:17]) == id_number[17]


def with_wrong_check(id18: str) -> str:
    """Same number with a check character that is not the right one."""
    right = id18[17]
    wrong = CHECK_CHARS[(CHECK_CHARS.index(right) + 3) % 11]
    return id18[:17] + wrong


def with_impossible_date(id18: str, month_day: str = "0230") -> str:
    """Same number with an impossible ``MMDD`` but a matching check character.

    Only the date is wrong, so a checker that looks at the check character
    alone would wrongly accept it.
    """
    first17 = id18[:10] + month_day + id18[14:17]
    return first17 + check_char(first17)


def spreadsheet_mangled(id18: str) -> str:
    """What a spreadsheet shows after reading the number as a float."""
    return f"{float(id18[:17]) * 10:.5E}"
