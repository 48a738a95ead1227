"""Offsets ("10 business days before contract_end") and durations ("5 business days")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_IDENT_RE = re.compile(rf"^{_IDENT}$")

# "<n> [business] day(s)|week(s)" with an optional sign; the rest of the sentence is parsed apart.
_AMOUNT = r"(?P<sign>[+-])?\s*(?P<n>\d+)\s+(?P<business>business\s+)?(?P<unit>days?|weeks?)"
_AMOUNT_RE = re.compile(rf"^{_AMOUNT}$", re.IGNORECASE)
_RELATIVE_RE = re.compile(
    rf"^{_AMOUNT}\s+(?P<dir>before|after|from)\s+(?P<anchor>.+)$", re.IGNORECASE
)
_ON_RE = re.compile(r"^(?:on\s+)?(?P<anchor>.+)$", re.IGNORECASE)
_REPLY_TO_RE = re.compile(rf"^reply\s+to\s+(?P<stage>{_IDENT})$", re.IGNORECASE)
_REPLY_COLON_RE = re.compile(rf"^reply:(?P<stage>{_IDENT})$", re.IGNORECASE)
# "when access done": a group of the wrap-up checklist (a kind such as access, or an item id)
_DONE_RE = re.compile(r"^(?:when\s+)?(?P<group>[a-z0-9][a-z0-9_-]*)\s+(?:is\s+|are\s+)?done$",
                      re.IGNORECASE)
_DONE_COLON_RE = re.compile(r"^done:(?P<group>[a-z0-9][a-z0-9_-]*)$", re.IGNORECASE)

_EXAMPLE = '"10 business days before contract_end"'
# grammar words are never anchors, so "on" or "days" alone is an error, not a date key
_RESERVED = {"on", "before", "after", "from", "to", "business", "day", "days", "week", "weeks"}
_DICT_KEYS = {"days", "business", "from"}


@dataclass(frozen=True)
class Offset:
    """A signed distance in calendar or business days from a named anchor."""

    days: int  # signed: negative = before the anchor
    business: bool  # count business days (per the Calendar) instead of calendar days
    # a date key, "previous", a stage id, "reply:<stage>", "reply" or "done:<checklist group>";
    # None = the stage's last send
    anchor: str | None

    def describe(self) -> str:
        """Say the offset back in the rule grammar, e.g. "10 business days before contract_end"."""
        amount = _amount_text(abs(self.days), self.business)
        if self.anchor is None:
            return amount
        anchor = _anchor_text(self.anchor)
        if self.days == 0 and not self.business:
            return f"when {anchor}" if self.anchor.startswith("done:") else f"on {anchor}"
        direction = "before" if self.days < 0 else "after"
        return f"{amount} {direction} {anchor}"


def _amount_text(n: int, business: bool) -> str:
    unit = "day" if n == 1 else "days"
    return f"{n} business {unit}" if business else f"{n} {unit}"


def _anchor_text(anchor: str) -> str:
    if anchor.startswith("reply:"):
        return f"reply to {anchor[len('reply:'):]}"
    if anchor.startswith("done:"):
        return f"{anchor[len('done:'):]} done"
    return anchor


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _parse_anchor(text: str) -> str | None:
    """Return the canonical anchor for `text`, or None if it is not one."""
    text = _normalise(text)
    if m := _REPLY_TO_RE.match(text) or _REPLY_COLON_RE.match(text):
        return f"reply:{m['stage']}"
    if m := _DONE_RE.match(text) or _DONE_COLON_RE.match(text):
        return f"done:{m['group'].lower()}"
    if not _IDENT_RE.match(text) or text.lower() in _RESERVED:
        return None
    # keywords are case-insensitive; other names are kept as written (TOML keys are case-sensitive)
    lowered = text.lower()
    return lowered if lowered in ("previous", "reply") else text


def _amount_days(m: re.Match[str]) -> tuple[int, bool]:
    n = int(m["n"])
    business = m["business"] is not None
    if m["unit"].lower().startswith("week"):
        n *= 5 if business else 7
    return n, business


def _cannot(value: object) -> ValueError:
    return ValueError(f"cannot read offset {value!r}: expected e.g. {_EXAMPLE}")


def _parse_offset_text(value: str) -> Offset:
    text = _normalise(value)
    if m := _AMOUNT_RE.match(text):
        if m["sign"]:
            raise ValueError(
                f"cannot read offset {value!r}: a delay without an anchor cannot have a sign "
                f'(write e.g. "5 business days")'
            )
        n, business = _amount_days(m)
        return Offset(n, business, None)
    if m := _RELATIVE_RE.match(text):
        anchor = _parse_anchor(m["anchor"])
        if anchor is None:
            raise ValueError(
                f"cannot read offset {value!r}: {m['anchor']!r} is not an anchor "
                f"(a date key, a stage id, \"previous\", \"reply\", \"reply to <stage>\" "
                f"or \"when <checklist group> done\")"
            )
        n, business = _amount_days(m)
        direction = m["dir"].lower()
        if direction == "from":
            return Offset(-n if m["sign"] == "-" else n, business, anchor)
        if m["sign"]:
            # "-3 days after x" is a contradiction waiting to be misread: refuse it
            raise ValueError(
                f"cannot read offset {value!r}: use a sign with 'from' "
                f'("-3 days from {m["anchor"]}") or a direction without a sign'
            )
        return Offset(-n if direction == "before" else n, business, anchor)
    if (m := _ON_RE.match(text)) and (anchor := _parse_anchor(m["anchor"])) is not None:
        return Offset(0, False, anchor)
    raise _cannot(value)


def _parse_offset_table(value: dict[str, Any]) -> Offset:
    unknown = sorted(set(value) - _DICT_KEYS)
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in offset table (expected days, business, from)"
        )
    if "days" not in value:
        raise ValueError("offset table needs 'days', e.g. {days = -10, business = true}")
    days, business, anchor_text = value["days"], value.get("business", False), value.get("from")
    if isinstance(days, bool) or not isinstance(days, int):
        raise ValueError(f"offset 'days' must be a whole number, not {days!r}")
    if not isinstance(business, bool):
        raise ValueError(f"offset 'business' must be true or false, not {business!r}")
    if anchor_text is None:
        if days < 0:
            raise ValueError(f"offset days = {days} needs 'from' (a delay cannot be negative)")
        return Offset(days, business, None)
    if not isinstance(anchor_text, str) or (anchor := _parse_anchor(anchor_text)) is None:
        raise ValueError(
            f"offset 'from' must name an anchor (a date key, a stage id, \"previous\", "
            f"\"reply\" or \"reply to <stage>\"), not {anchor_text!r}"
        )
    return Offset(days, business, anchor)


def parse_offset(value: str | dict[str, Any]) -> Offset:
    """Read an offset from text ("3 business days after x") or a {days, business, from} table."""
    if isinstance(value, str):
        return _parse_offset_text(value)
    if isinstance(value, dict):
        return _parse_offset_table(value)
    raise _cannot(value)


def parse_duration(text: str) -> tuple[int, bool]:
    """Read a delay such as "5 business days" or "2 weeks" as (days, business)."""
    m = _AMOUNT_RE.match(_normalise(text)) if isinstance(text, str) else None
    if m is None or m["sign"]:
        raise ValueError(
            f'cannot read duration {text!r}: expected e.g. "5 business days" or "2 days"'
        )
    return _amount_days(m)
