"""The checklist items of one stored engagement: what `status`, `checklist` and the document show.

Apart from engine/documents.py (which renders the document) so that the views that only count
open items import neither the renderer nor Jinja2 nor Babel.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailflow.config.engagements import hydrate
from mailflow.config.loading import Loaded
from mailflow.engine import checklist
from mailflow.engine.checklist import ChecklistItem
from mailflow.engine.records import MessageState as S
from mailflow.store import State

SENT = S.SENT


def items_of(state: State, loaded: Loaded, engagement: dict) -> list[ChecklistItem]:
    """Every checklist item of a stored engagement, as of its messages and replies."""
    return items_from(loaded, engagement, state.messages_of(engagement["id"]),
                      (r for r in state.replies.values()
                       if r.get("engagement") == engagement["id"]))


def items_from(loaded: Loaded, engagement: dict, messages: Iterable[dict],
               replies: Iterable[dict]) -> list[ChecklistItem]:
    """`items_of` given the engagement's own messages and replies (the tick has them at hand:
    a walk over every reply, or a message index rebuilt while planning adds messages, is not
    for each engagement)."""
    seq = loaded.sequence_for(engagement)
    feedback_stages = {s.id for s in seq.stages if s.on_reply == "feedback"}
    chosen = [r for r in replies if r.get("kind") == "human"
              and r.get("stage") in feedback_stages and r.get("trusted", True)]
    return checklist.derive(hydrate(engagement), feedback_replies=chosen,
                            document_shared_at=_shared_at(loaded, engagement, messages))


def document_shared_at(state: State, loaded: Loaded, engagement: dict) -> str | None:
    """When the first email that carries or links the offboarding document went out."""
    return _shared_at(loaded, engagement, state.messages_of(engagement["id"]))


def _shared_at(loaded: Loaded, engagement: dict, messages: Iterable[dict]) -> str | None:
    seq = loaded.sequence_for(engagement)
    carriers = {s.id for s in seq.stages if "offboarding_doc" in getattr(s, "attach", ())}
    if not carriers and (engagement.get("links") or {}).get("offboarding_doc") and seq.stages:
        carriers = {seq.stages[0].id}  # the timeline notice links the document
    sent = [m.get("sent_at") or "" for m in messages
            if m["stage"] in carriers and m.get("state") == SENT]
    return min(sent) if sent else None
