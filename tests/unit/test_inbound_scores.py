"""Other projects' corpora, scored with floors (issue 14): reply text, bounces, report kinds.

Each corpus's expectations are its own project's tests, translated into data files beside the
fixtures (tests/data/corpora/*/expected.*; ATTRIBUTION.md names the sources and licenses).
`python -m pytest -s tests/unit/test_inbound_scores.py` prints the score of every corpus.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailflow.inbound import classify
from mailflow.inbound.message import Inbound, parse_inbound
from tests.helpers import parsed_file

CORPORA = Path(__file__).parents[1] / "data" / "corpora"
# Status codes sisimai invents for its own reasons (5.0.9xx) are not in the mail: not scored.
_SISIMAI_PSEUDO_STATUS = re.compile(r"^\d\.0\.9\d\d$")


def _message(body: str, subtype: str = "plain") -> bytes:
    """A body wrapped as a client's reply to a message mailflow sent."""
    msg = EmailMessage()
    msg["From"] = "Client <client@client.example>"
    msg["To"] = "Dana <dana@consultant.example>"
    msg["Subject"] = "Re: Offboarding timeline"
    msg["Message-ID"] = "<reply-1@client.example>"
    msg["In-Reply-To"] = "<sent-1@consultant.example>"
    msg["Date"] = "Tue, 05 Jan 2027 10:00:00 +0000"
    msg.set_content(body, subtype=subtype, charset="utf-8", cte="8bit")
    return bytes(msg)


def _norm(line: str) -> str:
    """A line compared without quote markers, case or spacing differences."""
    return " ".join(re.sub(r"^[\s>]+", "", line).split()).casefold()


def _scored(line: str) -> bool:
    return bool(re.search(r"\w", line))


@dataclass
class Case:
    """One reply: the lines that must be kept and the history lines that must not show."""

    name: str
    raw: bytes
    keep: list[str]
    history: list[str]


@dataclass
class Verdict:
    """What the parser made of one case."""

    case: Case
    text: str
    missing: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)

    @property
    def right(self) -> bool:
        return not self.missing and not self.leaked


def judge(case: Case) -> Verdict:
    """Every keep line in the reply text, no history line in it."""
    text = parse_inbound(case.raw).text
    lines = {_norm(line) for line in text.split("\n")}
    joined = " ".join(_norm(line) for line in text.split("\n") if line.strip())
    verdict = Verdict(case, text)
    keep = [_norm(line) for line in case.keep if _scored(line)]
    verdict.missing = [line for line in keep if line not in joined]
    for line in case.history:
        norm = _norm(line)
        if not _scored(norm) or norm in keep:
            continue
        if norm in lines or (len(norm) >= 12 and norm in joined):
            verdict.leaked.append(line)
    return verdict


def _history(body: str, spec: dict) -> list[str]:
    lines = body.split("\n")
    found: list[str] = list(spec.get("history_lines", []))
    if "history_from" in spec:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == spec["history_from"])
        found += lines[start:]
    if spec.get("history_quoted"):
        found += [line for line in lines if line.lstrip().startswith(">")]
    hidden = {_norm(line) for line in spec.get("hidden", [])}
    return [line for line in found if _norm(line) not in hidden]


def crisp_cases() -> list[Case]:
    """crisp-oss/email-reply-parser's fixtures and the inline bodies of its test.js."""
    root = CORPORA / "crisp"
    spec = tomllib.loads((root / "expected.toml").read_text(encoding="utf-8"))
    cases = []
    for name, want in spec["cases"].items():
        body = (root / f"{name}.txt").read_text(encoding="utf-8")
        cases.append(Case(name, _message(body), want["keep"].split("\n"), _history(body, want)))
    for name, want in spec["inline"].items():
        body = want["body"]
        cases.append(Case(name, _message(body), want["keep"].split("\n"), _history(body, want)))
    return cases


def _rest(body: str, reply: str, not_scored: list[str]) -> list[str]:
    """talon's expectation is exact: every body line outside the reply is history."""
    reply_lines = {_norm(line) for line in reply.split("\n")}
    skip = {_norm(line) for line in not_scored}
    return [line for line in body.split("\n")
            if _norm(line) not in reply_lines and _norm(line) not in skip]


def _plain_body(raw: bytes) -> str:
    from email import message_from_bytes
    msg = message_from_bytes(raw)
    part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")


def talon_text_cases() -> list[Case]:
    """talon's extract_from_plain cases and its standard_replies files."""
    root = CORPORA / "talon"
    spec = tomllib.loads((root / "expected.toml").read_text(encoding="utf-8"))
    cases = []
    for name, want in spec["inline"].items():
        body, reply = want["body"], want["reply"]
        cases.append(Case(name, _message(body), reply.split("\n"),
                          _rest(body, reply, want.get("not_scored", []))))
    for name, want in spec["standard_replies"].items():
        raw = (root / "standard_replies" / name).read_bytes()
        reply = want["reply"]
        cases.append(Case(name, raw, reply.split("\n"),
                          _rest(_plain_body(raw), reply, want.get("not_scored", []))))
    return cases


def talon_html_cases() -> list[Case]:
    """talon's html_replies files: the reply is 'Hi. I am fine. Thanks, Alex'."""
    from mailflow.inbound.htmltext import html_to_text
    root = CORPORA / "talon"
    spec = tomllib.loads((root / "expected.toml").read_text(encoding="utf-8"))
    cases = []
    for name, want in spec["html_replies"].items():
        html = (root / "html_replies" / name).read_text(encoding="utf-8")
        reply = want["reply"]
        cases.append(Case(name, _message(html, "html"), reply.split("\n"),
                          _rest(html_to_text(html), reply, [])))
    return cases


def ours_cases() -> list[Case]:
    """Our own cases, one or more for each failure named in issue 14."""
    root = CORPORA / "ours"
    spec = tomllib.loads((root / "replies.toml").read_text(encoding="utf-8"))
    cases = []
    for name, want in spec["cases"].items():
        if "file" in want:
            raw = (root / want["file"]).read_bytes()
            body = _plain_body(raw)
        else:
            body = want["body"]
            raw = _message(body)
        cases.append(Case(name, raw, want["keep"].split("\n"), _history(body, want)))
    return cases


REPLY_CORPORA = {
    "crisp": crisp_cases,
    "talon-text": talon_text_cases,
    "talon-html": talon_html_cases,
    "ours": ours_cases,
}


@pytest.fixture(scope="module")
def reply_verdicts() -> dict[str, list[Verdict]]:
    return {name: [judge(case) for case in make()] for name, make in REPLY_CORPORA.items()}


def test_reply_text_scores_meet_the_floors(reply_verdicts):
    total = right = 0
    report = []
    for name, verdicts in reply_verdicts.items():
        ok = sum(v.right for v in verdicts)
        total, right = total + len(verdicts), right + ok
        report.append(f"reply text {name:<11} {ok:>3}/{len(verdicts):<3} "
                      f"{100 * ok / len(verdicts):5.1f}%")
        for v in verdicts:
            if not v.right:
                report.append(f"    {v.case.name}: missing {v.missing[:2]} leaked {v.leaked[:2]}")
    report.append(f"reply text overall     {right:>3}/{total:<3} {100 * right / total:5.1f}%")
    print("\n" + "\n".join(report))
    assert right / total >= 0.92, "\n".join(report)
    for name, verdicts in reply_verdicts.items():
        assert sum(v.right for v in verdicts) / len(verdicts) >= 0.85, name


def test_no_reply_text_is_lost_where_the_expected_reply_is_not_empty(reply_verdicts):
    lost = [(v.case.name, v.missing) for vs in reply_verdicts.values() for v in vs
            if v.missing]
    assert lost == []


# --- bounces ---------------------------------------------------------------------------------

SISIMAI = CORPORA / "sisimai"
_NOT_BOUNCE_REASONS = {"vacation": classify.AUTO_REPLY, "feedback": classify.REPORT,
                       "delivered": classify.DELIVERED}


# Where sisimai's reason is its convention and mailflow's kind says more, with why.
_OUR_KIND = {
    "arf-26.eml": (classify.UNSUBSCRIBE, "Apple Mail's one-click unsubscribe, not an ARF report: "
                   "sisimai files it as opt-out feedback; for mailflow the contact asks to stop"),
}


def _sisimai() -> dict[str, list[dict]]:
    return json.loads((SISIMAI / "expected.json").read_text(encoding="utf-8"))["files"]


_FLUFL_USED: set[str] = set()  # files where flufl.bounce was asked for recipients


@pytest.fixture(scope="module")
def sisimai_parsed() -> dict[str, Inbound]:
    from mailflow.inbound import bounces
    real, parsed, current = bounces.flufl_recipients, {}, [""]

    def recorded(raw: bytes) -> set[str]:
        found = real(raw)
        if found:
            _FLUFL_USED.add(current[0])
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bounces, "flufl_recipients", recorded)
        for name in _sisimai():
            current[0] = name
            parsed[name] = parse_inbound((SISIMAI / "bsd" / name).read_bytes())
    return parsed


def _statuses(inbound: Inbound) -> list[str | None]:
    return [r.status for r in inbound.delivery]


def test_bounce_scores_meet_the_floors(sisimai_parsed):
    expected = _sisimai()
    bounces = {n: rows for n, rows in expected.items()
               if rows[0]["reason"] not in _NOT_BOUNCE_REASONS}
    as_bounce = [n for n in bounces if sisimai_parsed[n].kind in (classify.BOUNCE,
                                                                  classify.DELAY)]
    wrong_kind = {n: sisimai_parsed[n].kind for n in bounces if n not in as_bounce}
    rows = [(n, i, row["status"]) for n in bounces for i, row in enumerate(bounces[n])
            if row["status"] and not _SISIMAI_PSEUDO_STATUS.match(row["status"])]
    status_ok = [r for r in rows if r[2] in _statuses(sisimai_parsed[r[0]])]
    counts_ok = [n for n in as_bounce if len(_statuses(sisimai_parsed[n])) == len(bounces[n])]
    print(f"\nbounces as bounces      {len(as_bounce)}/{len(bounces)} "
          f"{100 * len(as_bounce) / len(bounces):5.1f}%"
          f"\nexpected status         {len(status_ok)}/{len(rows)} "
          f"{100 * len(status_ok) / len(rows):5.1f}%"
          f"\nfailed-recipient count  {len(counts_ok)}/{len(as_bounce)} "
          f"{100 * len(counts_ok) / max(1, len(as_bounce)):5.1f}%"
          f"\nnot bounces: {sorted(wrong_kind.items())[:20]}")
    assert len(as_bounce) / len(bounces) >= 0.97
    assert len(status_ok) / len(rows) >= 0.90


def test_no_person_or_auto_reply_is_called_a_bounce(sisimai_parsed):
    auto = [n for n, rows in _sisimai().items() if rows[0]["reason"] == "vacation"]
    called = {n: sisimai_parsed[n].kind for n in auto if sisimai_parsed[n].kind != "auto_reply"}
    for path in sorted((SISIMAI / "not").glob("*.eml")):
        kind = parsed_file(path).kind
        if kind in (classify.BOUNCE, classify.DELAY, classify.DELIVERED, classify.REPORT):
            called[path.name] = kind
    assert called == {}


def test_reports_and_success_notices_get_their_own_kind(sisimai_parsed):
    for name, rows in _sisimai().items():
        want = _NOT_BOUNCE_REASONS.get(rows[0]["reason"])
        want = _OUR_KIND.get(name, (want,))[0]
        if want in (classify.REPORT, classify.DELIVERED, classify.UNSUBSCRIBE):
            assert sisimai_parsed[name].kind == want, name


def _count_right(parsed: dict[str, Inbound], names: list[str]) -> int:
    expected = _sisimai()
    return sum(len([r for r in parsed[n].delivery]) == len(expected[n]) for n in names)


def test_flufl_bounce_measured_against_our_detector(sisimai_parsed, monkeypatch):
    """The README's figures: who finds bounces and their recipients, flufl.bounce or ours."""
    import email as email_module

    from flufl.bounce import all_failures

    from mailflow.inbound import bounces
    expected = _sisimai()
    names = [n for n, rows in expected.items() if rows[0]["reason"] not in _NOT_BOUNCE_REASONS]
    flufl_found = flufl_count = 0
    for n in names:
        msg = email_module.message_from_bytes((SISIMAI / "bsd" / n).read_bytes())
        temporary, permanent = all_failures(msg)
        found = {bytes(a).lower() for a in (*temporary, *permanent)}
        flufl_found += bool(found)
        flufl_count += len(found) == len(expected[n])
    monkeypatch.setattr(bounces, "flufl_recipients", lambda raw: set())
    # only where flufl.bounce gave recipients can our detector alone differ
    alone = {n: parse_inbound((SISIMAI / "bsd" / n).read_bytes()) if n in _FLUFL_USED
             else sisimai_parsed[n] for n in names}
    ours_found = sum(alone[n].kind in (classify.BOUNCE, classify.DELAY) for n in names)
    both_found = sum(sisimai_parsed[n].kind in (classify.BOUNCE, classify.DELAY) for n in names)
    ours_count, both_count = _count_right(alone, names), _count_right(sisimai_parsed, names)
    print(f"\nof {len(names)} bounces   found  recipients right"
          f"\nflufl.bounce       {flufl_found:>5}  {flufl_count:>5}"
          f"\nours alone         {ours_found:>5}  {ours_count:>5}"
          f"\nours + flufl       {both_found:>5}  {both_count:>5}")
    assert both_found >= max(ours_found, flufl_found)
    assert both_count >= max(ours_count, flufl_count)
