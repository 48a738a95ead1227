"""The clock is a parameter: --now or $MAILFLOW_NOW, else the system clock."""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

from mailflow.errors import ConfigError


def resolve_now(value: str | None, zone: ZoneInfo | None = None) -> dt.datetime:
    """An aware UTC instant from ISO 8601 (a time without offset is in `zone`, else UTC)."""
    value = value or os.environ.get("MAILFLOW_NOW")
    if not value:
        return dt.datetime.now(dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        raise ConfigError(f"--now / MAILFLOW_NOW: expected an ISO 8601 time like "
                          f"2027-01-05T09:30 or 2027-01-05T14:30Z, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone or dt.UTC)
    return parsed.astimezone(dt.UTC)
