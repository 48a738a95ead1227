"""Engagement files: validated into plain JSON-able records (dates as ISO strings) for the store."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from mailflow import timing
from mailflow.config.settings import check_address, check_display_name, check_header_value
from mailflow.config.tomlfile import Section, read_toml
from mailflow.errors import ConfigError

STATUSES = ("active", "paused", "completed", "cancelled")
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_TOP_KEYS = ["id", "client", "time_zone", "locale", "sequence", "support_offer", "status",
             "dates", "consultant", "contacts", "links", "support", "deliverables",
             "shared_access", "invoices", "checklist", "holidays", "notes", "personal_note",
             "data"]
_LINK_KEYS = ["offboarding_doc", "deliverables_folder", "feedback_form", "meeting", "payment"]


def load_engagement_file(path: Path, default_zone: str) -> dict[str, Any]:
    """Read and validate an engagement TOML file into a record."""
    return validate_engagement(read_toml(path), path, default_zone)


# Long on purpose: every key of an engagement file, in file order, each checked where it is
# read, so an error always names the key the consultant is looking at.
def validate_engagement(data: dict, path: Path, default_zone: str) -> dict[str, Any]:
    """Check an engagement's fields; return the record with dates as ISO strings."""
    s = Section(data, path)
    s.check_keys(_TOP_KEYS)
    eid = s.text("id", required=True)
    if not _SLUG.match(eid):
        raise s.error("id", f"expected a slug of letters, digits, '-' and '_', got {eid!r}")
    zone = s.text("time_zone", default_zone)
    try:
        timing.load_zone(zone)
    except ValueError as err:
        raise s.error("time_zone", str(err)) from err
    locale = s.text("locale")
    if locale:  # absent: the project's default applies, whatever it is when the email is drafted
        from mailflow.render.locale import parse_locale
        try:
            locale = parse_locale(locale)
        except ValueError as err:
            raise s.error("locale", str(err)) from err
    status = s.text("status", "active")
    if status not in STATUSES:
        raise s.error("status", f"expected one of {', '.join(STATUSES)}, got {status!r}")
    record: dict[str, Any] = {
        "id": eid,
        "client": check_header_value(s, "client", s.text("client", required=True)),
        "time_zone": zone,
        "sequence": s.text("sequence", "offboarding"),
        "support_offer": s.get("support_offer", bool, False),
        "status": status,
        "locale": locale or None,
        "notes": s.text("notes", ""),
        "personal_note": s.text("personal_note", ""),
        "data": dict(s.get("data", dict, {})),
    }
    dates = s.section("dates", required=True)
    record["dates"] = {}
    for key in dates.data:
        if not re.match(r"^[a-z][a-z0-9_]*$", key):
            raise dates.error(key, "date names are lower-case letters, digits and _")
        record["dates"][key] = dates.date(key).isoformat()
    if "contract_end" not in record["dates"]:
        raise dates.error("contract_end", "required key is missing")
    lead = s.section("consultant", required=True)
    lead.check_keys(["name", "email", "title", "phone", "first_name"])
    record["consultant"] = {
        "name": check_display_name(lead, "name", lead.text("name", required=True)),
        "email": check_address(lead, "email", lead.text("email", required=True)),
        "title": lead.text("title", ""),
        "phone": lead.text("phone", ""),
        "first_name": lead.text("first_name", ""),
    }
    contacts = s.section("contacts", required=True)
    contacts.check_keys(["to", "cc"])
    record["contacts"] = {"to": _people(contacts, "to", required=True),
                          "cc": _people(contacts, "cc")}
    links = s.section("links") or Section({}, path, "links")
    links.check_keys(_LINK_KEYS)
    record["links"] = {k: links.text(k) for k in _LINK_KEYS}
    support = s.section("support") or Section({}, path, "support")
    support.check_keys(["summary", "price", "details"])
    record["support"] = {k: support.text(k) for k in ("summary", "price", "details")}
    record["deliverables"] = [_fields(d, {"name": "text!", "link": "text", "status": "text",
                                          "date": "date"}) for d in s.sections("deliverables")]
    record["shared_access"] = [_fields(a, {"system": "text!", "owner": "text",
                                           "revoke_date": "date!"})
                               for a in s.sections("shared_access")]
    record["invoices"] = [_fields(i, {"number": "text!", "amount": "number!", "currency": "text",
                                      "due": "date", "status": "text", "link": "text"})
                          for i in s.sections("invoices")]
    record["checklist"] = _checklist(s)
    hol = s.get("holidays", dict, None)
    if hol is not None:
        try:
            timing.make_calendar(hol)
        except ValueError as err:
            raise s.error("holidays", str(err)) from err
        record["holidays"] = _jsonable(hol)
    return record


# ids the checklist derives from the engagement itself (see mailflow.engine.checklist)
_BUILT_IN_ITEMS = frozenset({"document", "support", "meeting", "feedback"})
_BUILT_IN_PREFIXES = ("access-", "invoice-", "deliverable-")


def slug(text: str) -> str:
    """A short, typeable id: lower-case letters, digits and '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")[:40] or "item"


def _checklist(s: Section) -> list[dict[str, Any]]:
    """The engagement's own wrap-up items ([[checklist]]: name, owner, due, optional id)."""
    entries, seen = [], set()
    for entry in s.sections("checklist"):
        fields = _fields(entry, {"id": "text", "name": "text!", "owner": "text", "due": "date"})
        fields["id"] = slug(fields["id"] or fields["name"])
        if fields["id"] in seen:
            raise entry.error("id", f"another checklist item has the id {fields['id']!r}")
        if fields["id"] in _BUILT_IN_ITEMS or fields["id"].startswith(_BUILT_IN_PREFIXES):
            raise entry.error("id", f"{fields['id']!r} is the id of a built-in checklist item; "
                              "give this one another id")
        seen.add(fields["id"])
        entries.append(fields)
    return entries


def _people(s: Section, key: str, required: bool = False) -> list[dict[str, str]]:
    value = s.get(key, list, [], required)
    if required and not value:
        raise s.error(key, "needs at least one recipient")
    people = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            item = {"email": item}
        p = Section(item, s.path, f"{s.key}.{key}[{i}]")
        p.check_keys(["name", "email", "first_name"])
        people.append({
            "name": check_display_name(p, "name", p.text("name", "")),
            "email": check_address(p, "email", p.text("email", required=True)),
            "first_name": p.text("first_name", ""),
        })
    return people


def _fields(s: Section, spec: dict[str, str]) -> dict[str, Any]:
    s.check_keys(list(spec))
    out: dict[str, Any] = {}
    for key, kind in spec.items():
        required = kind.endswith("!")
        kind = kind.rstrip("!")
        if kind == "text":
            out[key] = s.text(key, None, required)
        elif kind == "date":
            d = s.date(key, required)
            out[key] = d.isoformat() if d else None
        else:
            out[key] = s.get(key, (int, float), None, required)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def hydrate(record: dict[str, Any]) -> dict[str, Any]:
    """The record with its ISO date strings turned back into dates, for templates and timing."""
    out = dict(record)
    out["dates"] = {k: dt.date.fromisoformat(v) for k, v in record["dates"].items()}
    out["deliverables"] = [_dated(d, "date") for d in record.get("deliverables", [])]
    out["shared_access"] = [_dated(a, "revoke_date") for a in record.get("shared_access", [])]
    out["invoices"] = [_dated(i, "due") for i in record.get("invoices", [])]
    return out


def _dated(item: dict, key: str) -> dict:
    item = dict(item)
    if item.get(key):
        item[key] = dt.date.fromisoformat(item[key])
    return item


def set_field(record: dict[str, Any], assignment: str, path: Path, default_zone: str
              ) -> dict[str, Any]:
    """Apply `key=value` (contract_end=2027-01-15, client=..., dates.start=...), revalidated."""
    key, sep, value = assignment.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key:
        raise ConfigError(f"{assignment!r}: expected KEY=VALUE, e.g. contract_end=2027-01-15")
    data = _to_toml_shape(record)
    if key in record.get("dates", {}) or key in ("contract_end", "start", "handover_date"):
        key = f"dates.{key}"
    parts = key.split(".")
    target = data
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{key}: cannot set inside a list; edit the engagement file and "
                              "use `mailflow engagement add --replace`")
    if parts[0] in ("id", "status"):
        raise ConfigError(f"{key}: cannot be changed with set (use pause/resume/cancel for status)")
    target[parts[-1]] = _parse_value(value)
    return validate_engagement(data, path, default_zone) | {"status": record["status"]}


def _parse_value(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    return value


def _to_toml_shape(record: dict[str, Any]) -> dict[str, Any]:
    # only what an engagement file can say: internal fields (rev, plan signature) stay out
    data = {k: v for k, v in record.items() if k in _TOP_KEYS and v is not None}
    if not data.get("holidays"):
        data.pop("holidays", None)
    data["links"] = {k: v for k, v in record.get("links", {}).items() if v}
    data["support"] = {k: v for k, v in record.get("support", {}).items() if v}
    for group in ("deliverables", "shared_access", "invoices"):
        data[group] = [{k: v for k, v in item.items() if v is not None}
                       for item in record.get(group, [])]
    return data
