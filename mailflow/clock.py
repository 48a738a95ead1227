"""The clock is a parameter: --now or $MAILFLOW_NOW, else the system clock.

A time written without an offset (`--now 2026-12-30T10:30`) is always read in the project's
own time zone, whichever way the project was found: the rule lives here, not in the CLI.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from zoneinfo import ZoneInfo

from mailflow.errors import CommandLineError

ZoneSource = ZoneInfo | Callable[[], ZoneInfo] | None


def parse_now(value: str) -> dt.datetime:
    """An ISO 8601 time as given, naive when it has no offset; exit 64 when unreadable."""
    # "2027-01-05 9:30" is how people type it; ISO 8601 wants "09:30"
    text = re.sub(r"^(\d{4}-\d\d-\d\d)[T ](\d)(?=:)", r"\1T0\2", value.strip())
    try:
        return dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise CommandLineError(f"--now / MAILFLOW_NOW: expected an ISO 8601 time like "
                               f"2027-01-05T09:30 or 2027-01-05T14:30Z, got {value!r}") from None


def resolve_now(value: str | None, zone: ZoneSource = None) -> dt.datetime:
    """An aware UTC instant from ISO 8601; a time without offset is in the project's zone.

    `zone` is the project's zone, or a function giving it: it is asked for only when the
    time has no offset, so a command given `...Z` or no --now never loads the project for it.
    Without a zone (no project at all) a bare time is UTC.
    """
    value = value or os.environ.get("MAILFLOW_NOW")
    if not value:
        return dt.datetime.now(dt.UTC)
    parsed = parse_now(value)
    if parsed.tzinfo is None:
        where = zone() if callable(zone) else zone
        parsed = parsed.replace(tzinfo=where or dt.UTC)
    return parsed.astimezone(dt.UTC)
