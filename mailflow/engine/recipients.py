"""Who a draft goes to, and whether a change of recipients keeps its approval. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def recipients_of(eng: Mapping[str, Any]) -> tuple[list[dict], list[dict]]:
    """The engagement's (to, cc) contacts, less every address that bounced."""
    bounced = {a.lower() for a in eng.get("bounced", [])}
    to = [c for c in eng["contacts"]["to"] if c["email"].lower() not in bounced]
    cc = [c for c in eng["contacts"].get("cc", []) if c["email"].lower() not in bounced]
    return to, cc


def emails(people: list[dict] | None) -> list[str]:
    """The addresses of a list of people, lower-case and sorted (for comparing lists)."""
    return sorted(p["email"].lower() for p in people or [])


def same_people(msg: Mapping[str, Any], to: list[dict], cc: list[dict],
                eng: Mapping[str, Any]) -> bool:
    """Whether a draft goes to the people it was approved for, less addresses that bounced.

    Leaving out a dead address is mailflow's own correction and keeps the approval; any
    other change of recipients is a new decision for the consultant.
    """
    bounced = {a.lower() for a in eng.get("bounced", [])}
    return all(emails(new) == [e for e in emails(msg.get(field)) if e not in bounced]
               for field, new in (("to", to), ("cc", cc)))
