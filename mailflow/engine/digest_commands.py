"""Replies to a digest: which one they answer, whether they may act, and what each line asks.

Approval by email must be as safe as the CLI (issue 13): a reply acts only when it threads to
a digest mailflow sent (whose Message-ID carries the digest's secret token), comes from the
consultant's own address, passed DKIM or DMARC where the consultant's server says so, and the
digest is still valid; each number binds to the draft's content when the digest was sent.
Pure: parsing and deciding; desk.digest applies the decisions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailflow.engine.digest import MESSAGE_ID_PREFIX, PLUS_PREFIX, content_digest
from mailflow.engine.records import MessageState as S

VERBS = ("approve", "reject", "handled", "pause", "resume")
# where the quoted digest starts when the mail program did not mark it with ">": the digest's
# first and last lines, and the separators mail programs put above a quoted message
_STOP = ("-- mailflow digest", "What waits for you,", "-----Original Message-----",
         "________________________________", "From: ", "Sent from my ")
_WROTE = re.compile(r"^(On|Le|Am|El) .{6,200}(wrote|a écrit|schrieb|escribió):$", re.I)


@dataclass(frozen=True)
class Command:
    """One line of a reply: a verb and its arguments (numbers, an engagement id, a reason)."""

    verb: str
    numbers: tuple[int, ...] = ()
    everything: bool = False  # "approve all"
    engagement: str | None = None
    reason: str = ""
    line: str = ""


@dataclass
class Parsed:
    """The commands of a reply, and the lines that are none (reported back, never guessed)."""

    commands: list[Command] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def parse_commands(text: str) -> Parsed:
    """Commands from a reply's own text (quoted text and signature already cut, or cut here)."""
    out = Parsed()
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(_STOP) or line in ("--", "-- ") or _WROTE.match(line):
            break  # the digest quoted, or a signature: nothing below is a command
        if not line or line.startswith(">"):
            continue
        words = line.split()
        verb = words[0].lower().rstrip(":")
        rest = words[1:]
        if verb == "approve" and [w.lower() for w in rest] == ["all"]:
            out.commands.append(Command("approve", everything=True, line=line))
        elif verb in ("approve", "handled") and rest and all(_num(w) for w in rest):
            out.commands.append(Command(verb, tuple(int(w.strip(",")) for w in rest),
                                        line=line))
        elif verb == "reject" and rest and _num(rest[0]):
            out.commands.append(Command("reject", (int(rest[0].strip(",")),),
                                        reason=" ".join(rest[1:]), line=line))
        elif verb in ("pause", "resume") and len(rest) == 1:
            out.commands.append(Command(verb, engagement=rest[0], line=line))
        else:
            out.unknown.append(line[:120])
    return out


def _num(word: str) -> bool:
    return word.strip(",").isdigit()


def digest_message_ids(references: tuple[str, ...]) -> list[str]:
    """The Message-IDs among a reply's In-Reply-To/References that name a digest."""
    return [r for r in references if r.startswith(MESSAGE_ID_PREFIX)]


def plus_tokens(addresses: tuple[str, ...]) -> list[str]:
    """Digest tokens found in plus addresses (you+digest-TOKEN@domain) the reply was sent to."""
    out = []
    for addr in addresses:
        m = re.search(r"\+" + re.escape(PLUS_PREFIX) + r"([0-9a-f]+)@", addr or "", re.I)
        if m:
            out.append(m[1].lower())
    return out


def looks_like_digest_reply(references: tuple[str, ...], to: tuple[str, ...],
                            subject: str) -> bool:
    """Whether a polled message is (or pretends to be) a reply to a digest: never a client's."""
    return bool(digest_message_ids(references) or plus_tokens(to)
                or "[mailflow digest]" in (subject or "").lower())


def find_digest(digests: dict[str, dict], references: tuple[str, ...], to: tuple[str, ...]
                ) -> tuple[dict | None, str]:
    """The digest a reply answers, or None with the reason it does not count."""
    by_mid = {d.get("message_id"): d for d in digests.values() if d.get("message_id")}
    threaded = [by_mid[r] for r in digest_message_ids(references) if r in by_mid]
    if not threaded:
        return None, ("it does not answer a digest mailflow sent (no digest Message-ID with its "
                      "secret token in In-Reply-To or References)")
    digest = threaded[-1] if len(threaded) == 1 else max(threaded, key=lambda d: d["sent_at"])
    tokens = plus_tokens(to)
    if tokens and digest["token"] not in tokens:
        return None, "the token in the address it was sent to is not that digest's"
    return digest, ""


@dataclass
class Decision:
    """What a reply does: each action to apply, and every line of the confirmation."""

    approve: list[tuple[int, str]] = field(default_factory=list)  # (number, message key)
    reject: list[tuple[int, str, str]] = field(default_factory=list)  # (n, key, reason)
    handled: list[tuple[int, str]] = field(default_factory=list)  # (n, reply id)
    pause: list[str] = field(default_factory=list)
    resume: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "3: changed since the digest (edited)"
    unknown: list[str] = field(default_factory=list)


def decide(parsed: Parsed, digest: dict, state) -> Decision:  # noqa: ANN001 - store.State
    """Bind each number to what the digest listed, and refuse what changed since."""
    out = Decision(unknown=list(parsed.unknown))
    listed = {e["n"]: e for e in digest.get("entries") or ()}
    for cmd in parsed.commands:
        if cmd.verb in ("pause", "resume"):
            eng = state.engagements.get(cmd.engagement or "")
            if eng is None:
                out.refused.append(f"{cmd.line}: no engagement {cmd.engagement!r}")
            elif eng.get("status") != ("active" if cmd.verb == "pause" else "paused"):
                out.refused.append(f"{cmd.line}: {eng['id']} is {eng.get('status')}")
            else:
                getattr(out, cmd.verb).append(eng["id"])
            continue
        numbers = ([n for n, e in sorted(listed.items()) if e["kind"] == "draft"]
                   if cmd.everything else list(cmd.numbers))
        for n in numbers:
            entry = listed.get(n)
            want = "reply" if cmd.verb == "handled" else "draft"
            if entry is None or entry["kind"] != want:
                out.refused.append(f"{n}: the digest lists no {want} {n}")
                continue
            if want == "reply":
                reply = state.replies.get(entry["key"]) or {}
                if reply.get("handled"):
                    out.refused.append(f"{n}: already handled")
                else:
                    out.handled.append((n, entry["key"]))
                continue
            msg = state.messages.get(entry["key"])
            why = _draft_refusal(msg, entry)
            if why:
                out.refused.append(f"{n}: {why}")
            elif cmd.verb == "approve":
                out.approve.append((n, msg["key"]))
            else:
                out.reject.append((n, msg["key"], cmd.reason or "rejected by email"))
    return out


def _draft_refusal(msg: dict | None, entry: dict) -> str:
    if msg is None:
        return "that draft no longer exists"
    if msg["state"] != S.AWAITING_APPROVAL:
        return f"it is {msg['state'].replace('_', ' ')} now, not awaiting approval"
    if content_digest(msg) != entry["content"]:
        what = "edited" if msg.get("edited") else "re-rendered or re-dated"
        return (f"it changed since the digest ({what}): nothing was approved; check the next "
                "digest or `mailflow drafts show`")
    return ""
