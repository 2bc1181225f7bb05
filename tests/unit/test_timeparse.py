from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from lightmem_core import timeparse


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2023/05/20 (Sat) 00:44", datetime(2023, 5, 20, 0, 44)),  # upstream LightMem
        ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56)),  # LoCoMo
        ("10:37 am on 27 June, 2023", datetime(2023, 6, 27, 10, 37)),
        ("2025-01-12T09:14:00", datetime(2025, 1, 12, 9, 14)),
        ("2025-01-12T09:14:00Z", datetime(2025, 1, 12, 9, 14)),
        ("2025-01-12T11:14:00+02:00", datetime(2025, 1, 12, 9, 14)),  # aware input normalised to UTC
        ("2025-01-12", datetime(2025, 1, 12)),
        (1736673240, datetime(2025, 1, 12, 9, 14)),
        (1736673240000, datetime(2025, 1, 12, 9, 14)),  # milliseconds
        (datetime(2025, 1, 12, 11, 14, tzinfo=timezone(timedelta(hours=2))), datetime(2025, 1, 12, 9, 14)),
    ],
)
def test_formats(value, expected) -> None:
    assert timeparse.parse_time(value) == expected


@pytest.mark.parametrize("value", ["", "yesterday-ish", "x" * 100, float("nan"), True, [2025], 10**20])
def test_rejects(value) -> None:
    with pytest.raises(ValueError):
        timeparse.parse_time(value)


def test_epoch_round_trip_and_weekday() -> None:
    dt = datetime(2023, 5, 20, 0, 44)
    assert timeparse.from_epoch(timeparse.to_epoch(dt)) == dt
    assert timeparse.weekday(dt) == "Sat"
    assert timeparse.format_time(dt) == "2023-05-20 00:44"
