"""Structured logs: masked ID numbers, key=value text and parseable JSON lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from gridhub.logs import configure_logging, get_logger, mask_id


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide loggers; put them back for other tests."""
    root = logging.getLogger("gridhub")
    saved = (root.handlers[:], root.level, root.propagate)
    noisy = {name: logging.getLogger(name).level for name in ("kafka", "faust", "urllib3")}
    yield
    root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
    for name, level in noisy.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(
    ("id_number", "masked"),
    [
        ("32072319650101123X", "320723********123X"),
        ("320723650101123", "320723*****1123"),
        ("1234567890", "**********"),
        ("12345", "*****"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_id_keeps_the_first_six_and_last_four(id_number: str | None, masked: str) -> None:
    assert mask_id(id_number) == masked
    if id_number:
        assert len(mask_id(id_number)) == len(id_number)


def test_json_lines_parse_and_carry_component_and_fields(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(json_lines=True)
    log = get_logger("connectors.police")
    log.info("batch published", rows=500, source="police", id=mask_id("32072319650101123X"))
    log.debug("not shown at INFO")
    log.warning("迟到的行", lag_seconds=1.5)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["component"] == "connectors.police"
    assert first["level"] == "info"
    assert first["message"] == "batch published"
    assert (first["rows"], first["source"], first["id"]) == (500, "police", "320723********123X")
    assert first["ts"].endswith("+00:00")
    assert (second["level"], second["message"], second["lag_seconds"]) == (
        "warning",
        "迟到的行",
        1.5,
    )
    assert "迟到的行" in lines[1]  # readable on a Chinese operator's console


def test_json_lines_carry_the_exception(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(json_lines=True)
    try:
        raise RuntimeError("ClickHouse refused")
    except RuntimeError:
        logging.getLogger("gridhub.streams.sink").exception("insert failed")
    (line,) = capsys.readouterr().err.splitlines()
    body = json.loads(line)
    assert body["level"] == "error"
    assert "RuntimeError: ClickHouse refused" in body["exception"]


def test_text_lines_are_key_value_pairs(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging()
    get_logger("streams.sink").info("batch stored", rows=20, table="events")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(" INFO    streams.sink: batch stored rows=20 table=events")
    stamp = line.split(" ", 1)[0]
    assert stamp.endswith("Z") and "T" in stamp


def test_the_level_filters_and_gridhub_logs_do_not_reach_the_root(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(level=logging.WARNING)
    log = get_logger("hub")
    log.info("hidden")
    log.error("shown", source="party")
    (line,) = capsys.readouterr().err.splitlines()
    assert "shown source=party" in line
    assert logging.getLogger("gridhub").propagate is False
    assert logging.getLogger("kafka").level == logging.WARNING
