"""Identity and address normalisation rules of identity.md and reference-data.md."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from gridhub.streams.normalize import (
    IdReason,
    PhoneReason,
    birth_date_from_id,
    china_local_to_utc,
    gender_from_id,
    is_anonymous,
    is_honorific_only,
    names_compatible,
    normalize_address,
    normalize_id_number,
    normalize_name,
    normalize_phone,
    split_address,
    surname_of,
)
from hypothesis import given
from hypothesis import strategies as st

TODAY = date(2026, 11, 23)
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
PREFIXES = ("伊山镇", "杨集镇", "灌云县")
FULL_WIDTH = str.maketrans(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#",
    "０１２３４５６７８９ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ"
    "ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ＃",
)


def with_check(first17: str) -> str:
    """Appends the GB 11643 check character, computed here independently of the module."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def wrong_check(first17: str) -> str:
    good = with_check(first17)[-1]
    return first17 + ("0" if good != "0" else "1")


# --- 公民身份号码 ---------------------------------------------------------------------------


def test_known_fifteen_digit_number_upgrades_to_its_eighteen_digit_form() -> None:
    result = normalize_id_number("110105491231002", today=TODAY)
    assert result.value == "11010519491231002X"
    assert result.reason is None
    assert result.valid


@pytest.mark.parametrize(
    "raw",
    [
        "11010519491231002X",
        "11010519491231002x",
        "  11010519491231002x ",
        "110105 19491231 002X",
        "\u3000110105\u300019491231002X\t",
        "１１０１０５１９４９１２３１００２Ｘ",
        "１１０１０５１９４９１２３１００２ｘ",
    ],
)
def test_spaces_lower_case_and_full_width_are_tolerated(raw: str) -> None:
    assert normalize_id_number(raw, today=TODAY).value == "11010519491231002X"


def test_numbers_beginning_with_nine_are_valid_under_the_same_rules() -> None:
    number = with_check("93100019850704211")
    assert normalize_id_number(number, today=TODAY).value == number
    assert normalize_id_number(wrong_check("93100019850704211"), today=TODAY).reason == (
        IdReason.CHECK_CHARACTER
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, IdReason.MISSING),
        ("", IdReason.MISSING),
        ("   ", IdReason.MISSING),
        ("3.20723E+17", IdReason.SCIENTIFIC),
        ("3.20723e+17", IdReason.SCIENTIFIC),
        ("3.20723199001011E+17", IdReason.SCIENTIFIC),
        ("32072319900101123", IdReason.LENGTH),
        ("3207231990010112345", IdReason.LENGTH),
        ("1234", IdReason.LENGTH),
        ("3207231990010112A4", IdReason.CHARACTERS),
        ("32072319900101X234", IdReason.CHARACTERS),
        ("32072390010112X", IdReason.CHARACTERS),
        ("320723-19900101-1234", IdReason.CHARACTERS),
        (wrong_check("32072319900101123"), IdReason.CHECK_CHARACTER),
        (with_check("32072319900230123"), IdReason.BIRTH_DATE),
        (with_check("32072319901301123"), IdReason.BIRTH_DATE),
        (with_check("32072319900100123"), IdReason.BIRTH_DATE),
        (with_check("32072320270101123"), IdReason.BIRTH_DATE_RANGE),
        (with_check("32072318791231123"), IdReason.BIRTH_DATE_RANGE),
        ("320723900230123", IdReason.BIRTH_DATE),
    ],
)
def test_unusable_numbers_carry_their_reason(raw: str | None, reason: IdReason) -> None:
    result = normalize_id_number(raw, today=TODAY)
    assert result.value is None
    assert result.reason is reason
    assert not result.valid


def test_birth_date_boundaries_are_inclusive() -> None:
    assert normalize_id_number(with_check("32072318800101123"), today=TODAY).valid
    assert normalize_id_number(with_check("32072320261123123"), today=TODAY).valid
    tomorrow = normalize_id_number(with_check("32072320261124123"), today=TODAY)
    assert tomorrow.reason is IdReason.BIRTH_DATE_RANGE


def test_default_today_is_the_china_date() -> None:
    assert normalize_id_number(with_check("32072320000229123")).valid
    future = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y%m%d")
    assert not normalize_id_number(with_check(f"320723{future}123")).valid


def test_reasons_are_stable_bilingual_strings() -> None:
    assert IdReason.CHECK_CHARACTER == "公民身份号码校验位错误 (ID number check character is wrong)"
    for reason in IdReason:
        chinese, english = reason.split(" (", 1)
        assert not chinese.isascii()
        assert english.isascii()
        assert english.endswith(")")


def test_gender_and_birth_date_are_read_from_the_number() -> None:
    assert gender_from_id("11010519491231002X") == "女"
    assert gender_from_id(with_check("32072319900101123")) == "男"
    assert birth_date_from_id("11010519491231002X") == date(1949, 12, 31)


@pytest.mark.parametrize("bad", ["110105491231002", "11010519491231002x", "3.20723E+17"])
def test_gender_and_birth_date_refuse_unnormalised_numbers(bad: str) -> None:
    with pytest.raises(ValueError, match="normalised"):
        gender_from_id(bad)
    with pytest.raises(ValueError, match="normalised"):
        birth_date_from_id(bad)


def test_birth_date_refuses_an_impossible_date() -> None:
    with pytest.raises(ValueError, match="impossible"):
        birth_date_from_id(with_check("32072319900230123"))


areas = st.integers(min_value=100000, max_value=999999).map(str)
sequences = st.integers(min_value=0, max_value=999).map(lambda n: f"{n:03d}")


@st.composite
def valid_ids(draw: st.DrawFn) -> str:
    born = draw(st.dates(min_value=date(1880, 1, 1), max_value=TODAY))
    return with_check(draw(areas) + born.strftime("%Y%m%d") + draw(sequences))


@given(valid_ids())
def test_any_valid_number_survives_normalisation_unchanged(number: str) -> None:
    assert normalize_id_number(number, today=TODAY).value == number


@given(valid_ids(), st.booleans(), st.booleans())
def test_valid_numbers_survive_spelling_variants(number: str, lower: bool, wide: bool) -> None:
    spelled = " ".join([number[:6], number[6:14], number[14:]])
    spelled = spelled.lower() if lower else spelled
    spelled = spelled.translate(FULL_WIDTH) if wide else spelled
    assert normalize_id_number(f" {spelled}\u3000", today=TODAY).value == number


@given(valid_ids(), st.integers(min_value=0, max_value=17), st.sampled_from("0123456789X"))
def test_any_single_character_change_makes_a_number_invalid(
    number: str, position: int, replacement: str
) -> None:
    changed = number[:position] + replacement + number[position + 1 :]
    if changed != number:
        assert normalize_id_number(changed, today=TODAY).value is None


@given(areas, st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31)), sequences)
def test_fifteen_digit_upgrade_yields_a_valid_number_with_the_same_birth_date(
    area: str, born: date, sequence: str
) -> None:
    legacy = area + born.strftime("%y%m%d") + sequence
    upgraded = normalize_id_number(legacy, today=TODAY).value
    assert upgraded is not None
    assert upgraded == with_check(area + born.strftime("%Y%m%d") + sequence)
    assert normalize_id_number(upgraded, today=TODAY).value == upgraded
    assert birth_date_from_id(upgraded) == born
    assert gender_from_id(upgraded) == ("男" if int(sequence[-1]) % 2 else "女")


# --- Phones ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value", "kind"),
    [
        ("13912345678", "13912345678", "mobile"),
        ("139 1234 5678", "13912345678", "mobile"),
        ("+86-139-1234-5678", "13912345678", "mobile"),
        ("+86 13912345678", "13912345678", "mobile"),
        ("0086 139 1234 5678", "13912345678", "mobile"),
        ("8613912345678", "13912345678", "mobile"),
        ("(+86)139-1234-5678", "13912345678", "mobile"),
        ("１３９１２３４５６７８", "13912345678", "mobile"),
        ("＋８６－１３９－１２３４－５６７８", "13912345678", "mobile"),
        ("  19912345678 ", "19912345678", "mobile"),
        ("0518-88123456", "051888123456", "landline"),
        ("(0518) 88123456", "051888123456", "landline"),
        ("（0518）8812 3456", "051888123456", "landline"),
        ("010-12345678", "01012345678", "landline"),
        ("0518-8812345", "05188812345", "landline"),
        ("+86 518 8812 3456", "051888123456", "landline"),
        ("+86-10-12345678", "01012345678", "landline"),
    ],
)
def test_phones_are_reduced_to_digits(raw: str, value: str, kind: str) -> None:
    result = normalize_phone(raw)
    assert (result.value, result.kind, result.reason) == (value, kind, None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, PhoneReason.MISSING),
        ("", PhoneReason.MISSING),
        (" - ", PhoneReason.MISSING),
        ("139****5678", PhoneReason.MASKED),
        ("139＊＊＊＊5678", PhoneReason.MASKED),
        ("*", PhoneReason.MASKED),
        ("88123456", PhoneReason.NO_AREA_CODE),
        ("8812345", PhoneReason.NO_AREA_CODE),
        ("12912345678", PhoneReason.MALFORMED),
        ("1391234567", PhoneReason.MALFORMED),
        ("139123456789", PhoneReason.MALFORMED),
        ("0518-88123456-801", PhoneReason.MALFORMED),
        ("无", PhoneReason.MALFORMED),
        ("+1 415 555 0100", PhoneReason.MALFORMED),
    ],
)
def test_unusable_phones_carry_their_reason(raw: str | None, reason: PhoneReason) -> None:
    result = normalize_phone(raw)
    assert (result.value, result.kind, result.reason) == (None, None, reason)


def test_masked_reason_is_the_plain_word() -> None:
    assert normalize_phone("139****5678").reason == "masked"


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_any_mobile_survives_every_spelling(mobile: str) -> None:
    for spelled in (
        mobile,
        f"+86-{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}",
        f"0086 {mobile[:3]} {mobile[3:7]} {mobile[7:]}",
        mobile.translate(FULL_WIDTH),
    ):
        assert normalize_phone(spelled).value == mobile


# --- Names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (" 王小明 ", "王小明"),
        ("王\u3000小明", "王小明"),
        ("王 小 明\t", "王小明"),
        ("王小明\u200b", "王小明"),
        ("ＪＯＨＮ", "JOHN"),
        ("买买提·艾力", "买买提·艾力"),
        ("买买提・艾力", "买买提·艾力"),
        ("买买提･艾力", "买买提·艾力"),
        ("买买提•艾力", "买买提·艾力"),
        ("买买提．艾力", "买买提·艾力"),
        ("买买提.艾力", "买买提·艾力"),
        ("买买提 · 艾力", "买买提·艾力"),
        ("", None),
        ("\u3000 ", None),
        (None, None),
    ],
)
def test_names_are_trimmed_folded_and_keep_the_middle_dot(
    raw: str | None, name: str | None
) -> None:
    assert normalize_name(raw) == name


@given(st.text())
def test_normalize_name_is_idempotent(raw: str) -> None:
    once = normalize_name(raw)
    assert once is None or normalize_name(once) == once


@pytest.mark.parametrize(
    ("name", "honorific"),
    [
        ("王先生", True),
        ("王女士", True),
        (" 王 先生 ", True),
        ("欧阳女士", True),
        ("王小明", False),
        ("王小明先生", False),
        ("先生", False),
        ("A先生", False),
        ("匿名", False),
        (None, False),
    ],
)
def test_honorific_only_names(name: str | None, honorific: bool) -> None:
    assert is_honorific_only(name) is honorific


@pytest.mark.parametrize(
    ("a", "b", "compatible"),
    [
        ("王小明", "王小明", True),
        ("王　小明", " 王小明", True),
        ("王先生", "王小明", True),
        ("王小明", "王女士", True),
        ("李先生", "王小明", False),
        ("王小明", "王小红", False),
        ("王先生", "王女士", False),
        ("王先生", "王先生", True),
        ("欧阳女士", "欧阳娜娜", True),
        ("欧女士", "欧阳娜娜", False),
        ("欧阳女士", "欧娜", False),
        ("买先生", "买买提·艾力", True),
        ("匿名", "王小明", False),
        ("王小明", "匿名", False),
        ("匿名", "匿名", False),
        (None, "王小明", False),
        ("王小明", "", False),
    ],
)
def test_names_compatible_follows_rule_two(a: str | None, b: str | None, compatible: bool) -> None:
    assert names_compatible(a, b) is compatible


def test_anonymous_and_surnames() -> None:
    assert is_anonymous(" 匿名 ")
    assert not is_anonymous("王小明")
    assert not is_anonymous(None)
    assert surname_of("欧阳娜娜") == "欧阳"
    assert surname_of("欧娜") == "欧"
    assert surname_of("王小明") == "王"


# --- Time -----------------------------------------------------------------------------------


def test_database_datetimes_are_china_local_time() -> None:
    assert china_local_to_utc(datetime(2026, 1, 1, 8, 0)) == datetime(2026, 1, 1, tzinfo=UTC)
    converted = china_local_to_utc(datetime(1990, 7, 1, 12, 0, 0, 123456))
    assert converted == datetime(1990, 7, 1, 4, 0, 0, 123456, tzinfo=UTC)
    assert converted.utcoffset() == timedelta(0)


def test_aware_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        china_local_to_utc(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8))))


# --- Addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("伊山镇幸福家园3号楼二单元", "幸福家园3栋"),
        ("灌云县伊山镇幸福路18号幸福家园3栋", "幸福路18号幸福家园3栋"),
        ("江苏省连云港市灌云县伊山镇幸福路18号", "幸福路18号"),
        ("连云港市灌云县幸福路18号", "幸福路18号"),
        ("幸福家园三幢", "幸福家园3栋"),
        ("幸福家园3座", "幸福家园3栋"),
        ("幸福家园３＃楼", "幸福家园3栋"),
        ("幸福家园3#", "幸福家园3栋"),
        ("东关小区a座", "东关小区A栋"),
        ("幸福路十八号", "幸福路18号"),
        ("幸福路二十三号", "幸福路23号"),
        ("幸福路一百零五号", "幸福路105号"),
        ("幸福家园十二栋", "幸福家园12栋"),
        ("幸福家园3栋2单元302室", "幸福家园3栋"),
        ("幸福家园3栋3单元502", "幸福家园3栋"),
        ("幸福家园3栋三〇二室", "幸福家园3栋"),
        ("幸福家园3栋东单元5楼", "幸福家园3栋"),
        ("幸福家园3栋-502", "幸福家园3栋"),
        ("幸福路18号302室", "幸福路18号"),
        ("幸福路18号2单元", "幸福路18号"),
        ("幸福路18号5层501室", "幸福路18号"),
        ("幸福路18号附近", "幸福路18号附近"),
        ("幸福家园3栋附近", "幸福家园3栋附近"),
        ("幸福路 18 号，幸福家园（3栋）", "幸福路18号幸福家园3栋"),
        ("幸福路伊山镇", "幸福路伊山镇"),
        ("伊山镇", ""),
    ],
)
def test_addresses_normalise_to_one_form(raw: str, normalised: str) -> None:
    assert normalize_address(raw, PREFIXES) == normalised


def test_split_address_reports_the_prefixes_it_stripped() -> None:
    key = split_address("江苏省连云港市灌云县伊山镇幸福家园3号楼", PREFIXES)
    assert key.core == "幸福家园3栋"
    assert key.named == ("灌云县", "伊山镇")
    assert split_address("幸福家园3号楼").named == ()


def test_without_prefixes_nothing_is_stripped_at_the_front() -> None:
    assert normalize_address("伊山镇幸福家园3号楼二单元") == "伊山镇幸福家园3栋"


address_tokens = st.sampled_from(
    [
        "幸福",
        "家园",
        "路",
        "号",
        "号楼",
        "栋",
        "幢",
        "座",
        "楼",
        "层",
        "单元",
        "室",
        "户",
        "附近",
        "#",
        "＃",
        "十",
        "百",
        "零",
        "〇",
        "二",
        "两",
        "三",
        "3",
        "18",
        "０",
        "a",
        "Ａ",
        " ",
        "\u3000",
        "-",
        "，",
        "省",
        "市",
        "江苏",
        *PREFIXES,
    ]
)


@given(st.one_of(st.text(), st.lists(address_tokens, max_size=14).map("".join)))
def test_normalize_address_is_idempotent(text: str) -> None:
    once = normalize_address(text, PREFIXES)
    assert normalize_address(once, PREFIXES) == once
