"""What a client's reply asks for, suggested offline by rules (en, fr, de, es).

A suggestion is only a pointer for the consultant: it names the words that triggered it and
nothing acts on it. Rules are checked from the most specific intent to the least, and each
needs a phrase that carries the intent alone (or a second signal); when none fits, there is
no suggestion: saying nothing beats guessing (tests/unit/test_intent.py measures precision).
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from mailflow.inbound.intent_rules import RULES, Rules
from mailflow.inbound.returndate import dates_in

__all__ = ["LANGUAGES", "Intent", "IntentKind", "detect_language", "suggest_intent"]

LANGUAGES = tuple(RULES)


class IntentKind(StrEnum):
    """The fixed set of intents a reply may be given."""

    DATE_CHANGE = "date_change"      # detail: the new date (ISO) when one is written
    DELIVERABLE = "deliverable"      # missing or faulty; detail: which one, when it matches
    SUPPORT_YES = "support_yes"
    SUPPORT_NO = "support_no"
    QUESTION = "question"
    INVOICE = "invoice"              # detail: "paid" or "query"
    ACCESS = "access"                # detail: "keep open" or "done"
    FEEDBACK = "feedback"
    THANKS = "thanks"                # thanks or sign-off: nothing more to do


LABELS = {
    IntentKind.DATE_CHANGE: "date change", IntentKind.DELIVERABLE: "deliverable missing/faulty",
    IntentKind.SUPPORT_YES: "yes to support", IntentKind.SUPPORT_NO: "no to support",
    IntentKind.QUESTION: "question", IntentKind.INVOICE: "invoice",
    IntentKind.ACCESS: "access", IntentKind.FEEDBACK: "feedback given",
    IntentKind.THANKS: "thanks/sign-off",
}


@dataclass(frozen=True)
class Intent:
    """A suggested intent: its kind, a detail (date, deliverable, paid/query...), the trigger."""

    kind: IntentKind
    detail: str | None
    triggers: tuple[str, ...]
    language: str

    @property
    def label(self) -> str:
        """For people: 'date change: 2027-02-03 (triggered by "move the handover to")'."""
        head = LABELS[self.kind] + (f": {self.detail}" if self.detail else "")
        words = ", ".join(f'"{t}"' for t in self.triggers)
        return f"{head} (triggered by {words})" if words else head

    def as_dict(self) -> dict:
        """As stored on a reply record and shown by --json."""
        return {"kind": str(self.kind), "detail": self.detail, "triggers": list(self.triggers),
                "language": self.language, "label": self.label}


# --- text helpers ------------------------------------------------------------------------------


class _Folded:
    """Lower-case text without accents, with a map back to the original for trigger words."""

    def __init__(self, text: str) -> None:
        self.original = text
        self._where: list[int] | None = None  # None: folded and original line up
        if text.isascii():  # most replies: one pass in C
            self.text = text.lower().replace("`", "'")
            return
        chars: list[str] = []
        where: list[int] = []
        for i, c in enumerate(text):
            if c < "\x80":
                chars.append("'" if c == "`" else c.lower())
                where.append(i)
                continue
            for f in unicodedata.normalize("NFKD", c.lower()):
                if not unicodedata.combining(f):
                    chars.append("'" if f in "\u2019\u02bc" else f)
                    where.append(i)
        self.text = "".join(chars)
        self._where = where

    def span(self, start: int, end: int) -> str:
        """The original text of a span of the folded text."""
        if start >= end:
            return ""
        if self._where is None:
            return self.original[start:end]
        return self.original[self._where[start]:self._where[end - 1] + 1]

    def masked(self, pattern: re.Pattern[str]) -> str:
        """The folded text with every match of `pattern` blanked (same length)."""
        return pattern.sub(lambda m: " " * len(m.group(0)), self.text)


def fold(text: str) -> str:
    """Lower-case text without accents (what the rules are written against)."""
    return _Folded(text).text


_URL = re.compile(r"\b(?:https?://|www\.)\S+")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


def detect_language(text: str, *, folded: str | None = None) -> str:
    """en, fr, de or es: the language whose common words the text uses most (en on a tie)."""
    words = _WORD.findall(folded if folded is not None else fold(text))
    scores = {lang: sum(w in rules.stopwords for w in words) for lang, rules in RULES.items()}
    best = max(scores.values())
    return next(lang for lang in LANGUAGES if scores[lang] == best)


def _sentences(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _SENTENCE.finditer(text)]


def _sentence_of(spans: list[tuple[int, int]], pos: int) -> tuple[int, int]:
    return next(((a, b) for a, b in spans if a <= pos < b), (pos, pos + 1))


# --- the rules, most specific first -----------------------------------------------------------


class _Reading:
    """One reply being read: its folded text, sentences, language and rules."""

    def __init__(self, text: str, stage: str | None) -> None:
        clean = _URL.sub(lambda m: " " * len(m.group(0)), text)
        self.f = _Folded(clean)
        self.text = self.f.text
        self.sentences = _sentences(self.text)
        self.rules: Rules = RULES["en"]  # set once the language is known
        self.stage = stage
        self.words = len(_WORD.findall(self.text))

    def trigger(self, m: re.Match[str], offset: int = 0) -> str:
        """The original words of a match in the folded text (or in a slice at `offset`)."""
        return " ".join(self.f.span(offset + m.start(), offset + m.end()).split())

    def in_sentence(self, m: re.Match[str], other: re.Pattern[str]) -> str | None:
        """The words of `other` in the sentence of `m`, if any."""
        a, b = _sentence_of(self.sentences, m.start())
        found = other.search(self.text[a:b])
        return self.trigger(found, a) if found else None


def _access(r: _Reading) -> tuple[str, list[str]] | None:
    for detail, pattern in (("keep open", r.rules.keep_open), ("done", r.rules.revoked)):
        for m in pattern.finditer(r.text):
            word = r.in_sentence(m, r.rules.access)
            if word:
                return detail, [r.trigger(m), word]
    return None


def _invoice(r: _Reading) -> tuple[str, list[str]] | None:
    for m in r.rules.invoice.finditer(r.text):
        query = r.in_sentence(m, r.rules.invoice_query)
        if query:
            return "query", [r.trigger(m), query]
        paid = r.in_sentence(m, r.rules.paid)
        if paid:
            return "paid", [r.trigger(m), paid]
        a, b = _sentence_of(r.sentences, m.start())
        if r.text[a:b].rstrip().endswith("?"):
            return "query", [r.trigger(m), "?"]
    return None


def _deliverable(r: _Reading, deliverables: Sequence[str]) -> tuple[str | None, list[str]] | None:
    text = r.f.masked(r.rules.no_problem)
    for m in r.rules.problem.finditer(text):
        a, b = _sentence_of(r.sentences, m.start())
        named = _which_deliverable(r.text[a:b], deliverables)
        thing = r.in_sentence(m, r.rules.thing)
        if named is None and thing is None:
            continue
        return named, [r.trigger(m), thing or ""]
    return None


_STEM = 6


def _stems(text: str) -> set[str]:
    return {w[:_STEM] for w in _WORD.findall(fold(text)) if len(w) >= 4}


_GENERIC = {"data", "datos", "donnees", "daten", "jobs", "and", "with", "final", "project",
            "projet", "proyecto", "projekt"}


def _which_deliverable(sentence: str, deliverables: Sequence[str]) -> str | None:
    """The one deliverable whose distinctive words the sentence uses most, if exactly one."""
    words = _stems(sentence)
    scored = []
    for name in deliverables:
        own = {s for s in _stems(name) if s not in _GENERIC}
        scored.append((len(own & words), name))
    scored.sort(key=lambda s: -s[0])
    if not scored or scored[0][0] == 0 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    return scored[0][1]


_DAY_ONLY = re.compile(r"\bthe\s+(\d{1,2})(?:st|nd|rd|th)\b")


def _written_date(r: _Reading, today: date | None) -> str | None:
    """The date the reply proposes: the one after 'to/au/auf/al', else the last one written."""
    found = dates_in(r.f.original, today)
    if today is not None:
        for m in _DAY_ONLY.finditer(r.text):
            if any(abs(pos - m.start()) < 12 for pos, _ in found):
                continue  # "the 3rd of February" was read whole
            day = int(m.group(1))
            year, month = today.year, today.month
            for _ in range(3):  # the next such day: this month, else the next ones
                if day <= calendar.monthrange(year, month)[1] and date(year, month, day) > today:
                    found.append((m.start(), date(year, month, day)))
                    break
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    if not found:
        return None
    found.sort()
    # "not the 22nd ... could we do the 27th": the proposal comes last
    targeted = [when for pos, when in found
                if r.rules.date_target.search(r.text[max(0, pos - 20):pos])]
    return (targeted or [when for _, when in found])[-1].isoformat()


def _date_change(r: _Reading, today: date | None) -> tuple[str | None, list[str]] | None:
    m = r.rules.date_strong.search(r.text) or r.rules.date_weak.search(r.text)
    if m is None:
        return None  # dates are looked for only when a reply speaks of moving one
    when = _written_date(r, today)
    if when is None and not r.rules.date_strong.search(r.text):
        return None  # "instead", "doesn't work for us": a date change only with a date
    return when, [r.trigger(m)]


def _support(r: _Reading) -> tuple[IntentKind, list[str]] | None:
    about = r.rules.support.search(r.text)
    if about is None and r.stage != "support_offer":
        return None
    context = [about.group(0)] if about else []
    no = r.rules.support_no.search(r.text)
    yes = r.rules.support_yes.search(r.f.masked(r.rules.support_no))
    if no and not yes:
        return IntentKind.SUPPORT_NO, [r.trigger(no), *context]
    if yes and not no:
        return IntentKind.SUPPORT_YES, [r.trigger(yes), *context]
    return None  # both, or neither: the consultant reads it


_FEEDBACK_MIN_WORDS = 10
_THANKS_MAX_WORDS = 30


def _question(r: _Reading) -> list[str] | None:
    for a, b in r.sentences:
        sentence = r.text[a:b].strip()
        if sentence.endswith("?") and len(_WORD.findall(sentence)) >= 2:
            shown = " ".join(r.f.span(a, b).split())
            return [shown if len(shown) <= 60 else shown[:57] + "..."]
    return None


def suggest_intent(text: str, deliverables: Iterable[str] = (), language: str | None = None,
                   *, stage: str | None = None, today: date | None = None) -> Intent | None:
    """The intent of a human reply's new text, or None when no rule is sure enough."""
    if not text or not text.strip():
        return None
    r = _Reading(text, stage)
    lang = language if language in RULES else detect_language(text, folded=r.text)
    r.rules = RULES[lang]

    def made(kind: IntentKind, detail: str | None, triggers: list[str]) -> Intent:
        return Intent(kind, detail, tuple(dict.fromkeys(t for t in triggers if t)), lang)

    if found := _access(r):
        return made(IntentKind.ACCESS, *found)
    if found := _invoice(r):
        return made(IntentKind.INVOICE, *found)
    if found := _deliverable(r, list(deliverables)):
        return made(IntentKind.DELIVERABLE, *found)
    if found := _date_change(r, today):
        return made(IntentKind.DATE_CHANGE, *found)
    if support := _support(r):
        return made(support[0], None, support[1])
    if r.words >= _FEEDBACK_MIN_WORDS and (m := r.rules.feedback.search(r.text)):
        return made(IntentKind.FEEDBACK, None, [r.trigger(m)])
    if asked := _question(r):
        return made(IntentKind.QUESTION, None, asked)
    if r.words <= _THANKS_MAX_WORDS and not r.rules.deferral.search(r.text) \
            and (m := r.rules.thanks.search(r.text)):
        return made(IntentKind.THANKS, None, [r.trigger(m)])
    return None
