"""The table of certificate lifetimes (CA/B Forum SC-081v3), read on both sides of every step."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from panel_ssl_plugin import lifetimes
from panel_ssl_plugin.lifetimes import (
    certificate_ends,
    dcv_reuse_days,
    max_certificate_days,
    subscription_ends,
)

JUST_BEFORE = timedelta(microseconds=1)
STEPS = [
    # (the step, longest certificate before it, from it on; validation reuse before, from on)
    (datetime(2026, 3, 15, tzinfo=UTC), (398, 200), (398, 200)),
    (datetime(2027, 3, 15, tzinfo=UTC), (200, 100), (200, 100)),
    (datetime(2029, 3, 15, tzinfo=UTC), (100, 47), (100, 10)),
]


@pytest.mark.parametrize(("step", "certificate", "reuse"), STEPS)
def test_each_step_applies_from_its_utc_midnight_on(step, certificate, reuse):
    assert max_certificate_days(step - JUST_BEFORE) == certificate[0]
    assert max_certificate_days(step) == certificate[1]
    assert dcv_reuse_days(step - JUST_BEFORE) == reuse[0]
    assert dcv_reuse_days(step) == reuse[1]


def test_the_step_is_midnight_utc_whatever_zone_the_time_is_given_in():
    tokyo = timezone(timedelta(hours=9))
    assert max_certificate_days(datetime(2026, 3, 15, 8, 59, tzinfo=tokyo)) == 398  # 14th, UTC
    assert max_certificate_days(datetime(2026, 3, 15, 9, 0, tzinfo=tokyo)) == 200


def test_long_before_and_long_after():
    assert max_certificate_days(datetime(2020, 1, 1, tzinfo=UTC)) == 398
    assert max_certificate_days(datetime(2040, 1, 1, tzinfo=UTC)) == 47
    assert dcv_reuse_days(datetime(2040, 1, 1, tzinfo=UTC)) == 10


def test_a_naive_time_is_refused_rather_than_guessed():
    with pytest.raises(ValueError, match="timezone-aware"):
        max_certificate_days(datetime(2027, 3, 15))


@pytest.mark.parametrize(
    ("starts", "months", "ends"),
    [
        ("2026-06-10T14:30:00+00:00", 12, "2027-06-10T14:30:00+00:00"),
        ("2026-06-10T14:30:00+00:00", 24, "2028-06-10T14:30:00+00:00"),
        ("2026-01-31T00:00:00+00:00", 1, "2026-02-28T00:00:00+00:00"),
        ("2027-11-30T00:00:00+00:00", 3, "2028-02-29T00:00:00+00:00"),
        ("2028-02-29T00:00:00+00:00", 12, "2029-02-28T00:00:00+00:00"),
        ("2026-12-07T00:00:00+00:00", 1, "2027-01-07T00:00:00+00:00"),
    ],
)
def test_a_subscription_ends_the_same_day_so_many_months_later(starts, months, ends):
    start = datetime.fromisoformat(starts)
    assert subscription_ends(start, months) == datetime.fromisoformat(ends)


def test_a_certificate_is_capped_by_the_table_and_by_its_subscription():
    issued = datetime(2026, 6, 10, tzinfo=UTC)
    paid_until = subscription_ends(issued, 12)
    assert certificate_ends(issued, paid_until) == issued + timedelta(days=200)
    second = issued + timedelta(days=200)
    assert certificate_ends(second, paid_until) == paid_until  # 165 days left: cut at the end
    assert certificate_ends(issued, None) == issued + timedelta(days=200)  # ACME: no term
    after_2027 = datetime(2027, 4, 1, tzinfo=UTC)
    assert certificate_ends(after_2027, subscription_ends(after_2027, 12)) - after_2027 == (
        timedelta(days=100)
    )


def test_no_other_module_hard_codes_the_figures():
    """The figures live in lifetimes.py only: a ballot changing them is one edit."""
    root = Path(lifetimes.__file__).parent
    figures = re.compile(r"\b398\b|\bdays\s*=\s*(200|100|47)\b|\b(200|100|47)\s*days\b")
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for path in root.rglob("*.py")
        if path.name != "lifetimes.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if figures.search(line)
    ]
    assert offenders == []
