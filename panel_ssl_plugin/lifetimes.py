"""How long a public TLS certificate may last, and how long the domain validation behind it may
be reused, by the day it is issued: the one table of CA/Browser Forum Ballot SC-081v3.

Everything in the plugin that needs these figures asks here (the sandbox CA caps its
certificates with them, the test simulators do the same, the order service plans replacements
from them), so the next ballot is one edit. A subscription is what a reseller pays for (12, 24
months...); from 2026-03-15 one subscription spans several certificates, each capped by the
table on its own issue day and never outlasting the subscription (:func:`certificate_ends`).

========================  ==================  =======================
issued on or after (UTC)  longest certificate  validation reusable for
========================  ==================  =======================
(earlier)                 398 days            398 days
2026-03-15                200 days            200 days
2027-03-15                100 days            100 days
2029-03-15                47 days             10 days
========================  ==================  =======================
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import NamedTuple


class Limits(NamedTuple):
    """The limits in force from ``since`` (midnight UTC) on."""

    since: datetime
    certificate_days: int
    dcv_reuse_days: int


BEFORE_SC081 = Limits(datetime.min.replace(tzinfo=UTC), 398, 398)
SC081_STEPS: tuple[Limits, ...] = (
    BEFORE_SC081,
    Limits(datetime(2026, 3, 15, tzinfo=UTC), 200, 200),
    Limits(datetime(2027, 3, 15, tzinfo=UTC), 100, 100),
    Limits(datetime(2029, 3, 15, tzinfo=UTC), 47, 10),
)


def limits_on(issued_at: datetime) -> Limits:
    """The row of the table that applies to a certificate issued at ``issued_at`` (aware)."""
    if issued_at.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware (UTC): the steps are UTC midnights")
    return next(step for step in reversed(SC081_STEPS) if issued_at >= step.since)


def max_certificate_days(issued_at: datetime) -> int:
    """The longest validity, in days, of a certificate issued at ``issued_at``."""
    return limits_on(issued_at).certificate_days


def dcv_reuse_days(issued_at: datetime) -> int:
    """For how many days domain validation done at ``issued_at`` may back new certificates."""
    return limits_on(issued_at).dcv_reuse_days


def subscription_ends(starts: datetime, months: int) -> datetime:
    """The end of a subscription of ``months`` calendar months from ``starts``: the same day
    of the month that many months later (the month's last day when it is shorter), the same
    time of day. 10 Jun 2026 + 12 months is 10 Jun 2027, which is what a reseller expects to
    read as "paid until"."""
    month_index = starts.month - 1 + months
    year, month = starts.year + month_index // 12, month_index % 12 + 1
    day = min(starts.day, calendar.monthrange(year, month)[1])
    return starts.replace(year=year, month=month, day=day)


def certificate_ends(issued_at: datetime, subscription_end: datetime | None) -> datetime:
    """When a certificate issued at ``issued_at`` ends: the longest the table allows, cut at
    the end of the subscription it belongs to (``None``: no subscription at the CA)."""
    longest = issued_at + timedelta(days=max_certificate_days(issued_at))
    return longest if subscription_end is None else min(longest, subscription_end)
