"""What the dashboard is given: masked dead-letter samples and the last hour's points."""

from __future__ import annotations

import time
from typing import Any

from gridhub.schemas import encode_dict

from gridhub.dashboard.data import Overview, mask_sample
from tests.cases.police_rows import SYRK_ROW


def test_samples_show_fields_with_id_numbers_and_secrets_masked() -> None:
    wire = encode_dict("SyrkRow", {**SYRK_ROW, "gmsfhm": "32072319650101123X"})
    shown = mask_sample(wire)
    assert '"gmsfhm": "320723********123X"' in shown and "32072319650101123X" not in shown
    text = b'{"idCard": "320723650101123", "token": "abc-secret", "app_secret": "s3"}\x01'
    shown = mask_sample(text)
    assert "320723*****1123" in shown
    assert "abc-secret" not in shown and "s3" not in shown and '"token": "***"' in shown
    assert "\x01" not in shown
    assert mask_sample(b"x" * 1000).endswith("…")


def test_the_last_hour_takes_a_point_per_interval_with_the_freshness_since_the_last(
) -> None:  # fmt: skip
    status: dict[str, Any] = {
        "sources": {"police": {"records": 10}},
        "stages": {"routed": 10, "merged": 9, "sunk_rows": 20, "dead_letters": 1},
        "lag": {"gridhub.person": {"0": 4, "1": 1}, "x-__assignor-__leader": {"0": 7}},
    }
    overview = Overview(lambda: status, lambda: None, "grid", sample_seconds=0.01)  # type: ignore[arg-type, return-value]
    overview.stored_freshness([1.0, 2.0, 3.0])
    overview.sample(status)
    overview.sample(status)  # too soon: no second point
    (point,) = overview.history
    assert point["pulled"] == {"police": 10} and point["lag"] == 5
    assert point["fresh_p50"] == 2.0 and point["fresh_p99"] == 3.0
    time.sleep(0.02)
    overview.sample(status)
    assert overview.history[-1]["fresh_p50"] is None  # nothing stored since
