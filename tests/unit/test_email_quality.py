"""The quality gate of the default playbook (issue 16): every email of the sequence, rendered for
a matrix of engagements in every locale, sent when the real planner says it goes out.

Each email must: have no empty section; never say "everything delivered" while something is not;
never present a date already past as upcoming; carry the same facts in its text and HTML parts;
have no encoded body line over 76 characters (RFC 2045); hide nothing (`display:none`); give every
data table header cells. Across the sequence, every invoice still open is told to the client in
some email sent before the contract ends.
"""

from __future__ import annotations

import copy
import datetime as dt
import html as htmlmod
import re
import tomllib
from pathlib import Path
from typing import Any

import lxml.html
import pytest

from mailflow import timing
from mailflow.config.engagements import hydrate, validate_engagement
from mailflow.config.rules import load_sequence
from mailflow.engine import checklist
from mailflow.engine.planner import Context, plan_engagement
from mailflow.render import inline, templates
from mailflow.render.compose import build_message
from mailflow.render.context import template_context
from mailflow.render.locale import daymonth, language_of, longdate, money, shortdate
from mailflow.render.templates import Renderer
from tests.helpers import built_both_ways

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates" / "emails"
EXAMPLE = ROOT / "mailflow" / "playbook" / "engagements" / "example.toml"
RULES = ROOT / "rules" / "offboarding.toml"
LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_ES")

# what each language says of a date already past: a paragraph naming a past date says one of these
PAST_WORDS = {
    "en": ("was due", "overdue", "delivered", "ended", "my note of"),
    "fr": ("en retard", "livré", "fermé", "était", "validé", "mon message du"),
    "de": ("überfällig", "war fällig", "war am", "geliefert", "beendet", "abgenommen",
           "meiner nachricht vom"),
    "es": ("vencía", "vencida", "entregado", "terminó", "estaba previsto", "aceptado",
           "mi mensaje del"),
}
# the subject or sentence that claims every deliverable is in the client's hands
ALL_DELIVERED = {
    "en": "everything delivered",
    "fr": "tous les livrables, réunis",
    "de": "alles geliefert",
    "es": "todo entregado",
}


def example() -> dict[str, Any]:
    """The example engagement as its TOML file says it."""
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def none_of_anything(e: dict[str, Any]) -> None:
    for key in ("deliverables", "invoices", "shared_access", "links", "support"):
        e.pop(key)
    e["support_offer"] = False
    e["dates"] = {"contract_end": e["dates"]["contract_end"]}
    e["contacts"] = {"to": [{"name": "Tom Becker", "email": "tom@northwind.example"}]}


def one_of_each(e: dict[str, Any]) -> None:
    e["deliverables"] = e["deliverables"][:1]
    e["shared_access"] = e["shared_access"][:1]
    e["invoices"] = [dict(e["invoices"][0], due=dt.date(2027, 2, 26))]  # due after the end


def ten_of_everything(e: dict[str, Any]) -> None:
    e["client"] = "Ødegård & Søn Bygg og Eiendomsforvaltning AS (Nordisk Konsern)"
    e["contacts"]["to"] = [
        {"name": f"Zoë Ødegård-Konstantinopoulou {n}", "email": f"z{n}@odegard.example"}
        for n in range(10)]
    e["contacts"]["cc"] = [{"name": f"Łukasz Ñúñez {n}", "email": f"l{n}@odegard.example"}
                           for n in range(10)]
    e["deliverables"] = [
        {"name": f"Überarbeitete Berichte und Betriebshandbuch für Rechenzentrum Nr. {n}",
         "link": f"https://drive.example/odegard/d{n}",
         "status": ("delivered", "scheduled", "in_progress")[n % 3],
         "date": dt.date(2026, 12, 1) + dt.timedelta(days=7 * n)} for n in range(10)]
    e["shared_access"] = [
        {"system": f"Système de production « Nordlys » région {n} (comptes break-glass inclus)",
         "owner": "Łukasz Ñúñez 3" if n % 2 else "Dana Whitfield",
         "revoke_date": dt.date(2027, 1, 25) + dt.timedelta(days=n)} for n in range(10)]
    e["invoices"] = [
        {"number": f"WC-2026-{200 + n}", "amount": 1234.5 * (n + 1),
         "currency": ("USD", "EUR", "JPY", "NOK")[n % 4],
         "due": dt.date(2026, 12, 20) + dt.timedelta(days=9 * n),
         "status": "paid" if n % 3 == 0 else "outstanding"} for n in range(10)]


def all_paid(e: dict[str, Any]) -> None:
    for invoice in e["invoices"]:
        invoice["status"] = "paid"


def overdue_without_shared_access(e: dict[str, Any]) -> None:
    # the case of the issue: a $22,000 invoice, overdue, and no shared access to remove
    e.pop("shared_access")
    e["invoices"] = [{"number": "WC-2026-131", "amount": 22000, "currency": "USD",
                      "due": dt.date(2027, 1, 4), "status": "outstanding"},
                     {"number": "WC-2026-132", "amount": 5400, "currency": "USD",
                      "status": "outstanding"}]  # no due date: due on receipt


def two_to_and_a_cc(e: dict[str, Any]) -> None:
    e["contacts"]["to"] = [
        {"name": "María José Álvarez", "first_name": "María José", "email": "mj@northwind.example"},
        {"name": "Sam Lee", "email": "sam.lee@northwind.example"}]
    e["shared_access"][1]["owner"] = "Sam Lee"  # a To recipient who owns a system


def access_already_removed(e: dict[str, Any]) -> None:
    # every access removed weeks before the notice goes out (e.g. the client asked early)
    for access in e["shared_access"]:
        access["revoke_date"] = dt.date(2027, 1, 4)


VARIANTS = {
    "access_already_removed": access_already_removed,
    "none_of_anything": none_of_anything,
    "one_of_each": one_of_each,
    "ten_of_everything": ten_of_everything,
    "all_paid": all_paid,
    "overdue_without_shared_access": overdue_without_shared_access,
    "two_to_and_a_cc": two_to_and_a_cc,
    "example": lambda e: None,
}


def engagement(variant: str, locale: str) -> dict[str, Any]:
    """The variant, validated by the real loader and hydrated as the runner renders it."""
    raw = example()
    VARIANTS[variant](raw)
    raw["locale"] = locale
    data = hydrate(validate_engagement(raw, EXAMPLE, "UTC"))
    data.update(checklist.planning_facts(data))  # what rule conditions see, as in a tick
    return data


def sequence_emails(e: dict[str, Any], renderer: Renderer) -> list[dict[str, Any]]:
    """Every email of the engagement's sequence, rendered at the time the planner sends it."""
    seq = load_sequence(RULES, timing.parse_window(None, None), TEMPLATES)
    zone = timing.load_zone(e["time_zone"])
    ctx = Context(zone=zone, calendar=timing.make_calendar(None))
    items = plan_engagement(e, seq, {}, [], ctx)
    emails: list[dict[str, Any]] = []
    sent: dict[str, dt.datetime] = {}
    for item in items:
        if item.step:
            continue
        if item.status == "skipped":
            assert item.reasons and item.reasons[0], item  # plan says why
            continue
        assert item.status == "scheduled", item
        stage = seq.stage(item.stage)
        when = item.due.astimezone(zone).replace(tzinfo=None)
        steps = [(0, stage.template, when)]
        for n, reminder in enumerate(stage.reminders, start=1):
            steps.append((n, reminder.template, when + dt.timedelta(days=7)))
        for step, template, at in steps:
            seen = {**sent, stage.id: when} if step else dict(sent)
            cc = e["contacts"]["cc"]
            if step and not stage.reminder_at(step).cc:
                cc = []
            context = template_context(
                e, sender_name=e["consultant"]["name"], sender_email=e["consultant"]["email"],
                stage_id=stage.id, stage_name=stage.name, step=step, now_local=at, sent=seen,
                recipient=e["contacts"]["to"][0], cc=cc)
            out = renderer.render(template, context)
            emails.append({"template": template, "at": at, "out": out, "cc": cc})
        sent[stage.id] = when
    return emails


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


MATRIX = [(v, loc) for v in VARIANTS for loc in LOCALES]


# each email's HTML before and after CSS inlining, per matrix case
INLINED: dict[tuple[str, str], list[tuple[str, str]]] = {}


@pytest.fixture(scope="module")
def rendered(renderer: Renderer) -> dict[tuple[str, str], tuple[dict, list[dict]]]:
    out = {}
    for variant, locale in MATRIX:
        e = engagement(variant, locale)
        snapshot = copy.deepcopy(e)
        seen = INLINED[(variant, locale)] = []

        def inlining(html: str, seen: list = seen) -> str:
            seen.append((html, inline.inline_css(html)))
            return seen[-1][1]

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(templates, "inline_css", inlining)
            out[(variant, locale)] = (e, sequence_emails(e, renderer))
        assert e == snapshot, "rendering must not change the engagement"
    return out


def visible(html: str) -> str:
    """The HTML body's text as a reader sees it."""
    body = html.split("<body", 1)[1]
    return re.sub(r"\s+", " ", htmlmod.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def paragraphs(text: str) -> list[str]:
    """Paragraphs and list items of a text part, line wrapping undone."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip():
            blocks.append([])
        elif re.match(r"^(- |\d+\. )", line) or not blocks:
            blocks.append([line])
        else:
            blocks[-1].append(line)
    return [" ".join(part.strip() for part in b) for b in blocks if b]


def date_forms(value: dt.date, locale: str) -> set[str]:
    return {f(value, locale) for f in (longdate, shortdate, daymonth)}


def facts(e: dict[str, Any], locale: str) -> set[str]:
    """What an email may state about the engagement: both parts must state the same ones."""
    found = {e["client"], e["consultant"]["name"]}
    found |= {d["name"] for d in e["deliverables"]}
    found |= {a["system"] for a in e["shared_access"]}
    found |= {a["owner"] for a in e["shared_access"] if a.get("owner")}
    for i in e["invoices"]:
        found |= {i["number"], money(i["amount"], i["currency"], locale)}
    dates = [*e["dates"].values(), *(d["date"] for d in e["deliverables"] if d.get("date")),
             *(a["revoke_date"] for a in e["shared_access"]),
             *(i["due"] for i in e["invoices"] if i.get("due"))]
    for value in dates:
        found |= date_forms(value, locale)
    # compared with the parts' text, whose spaces (no-break ones too) are flattened
    return {flat(f) for f in found if f}


@pytest.mark.parametrize(("variant", "locale"), MATRIX)
def test_every_email_passes_the_quality_gate(rendered, variant: str, locale: str) -> None:
    e, emails = rendered[(variant, locale)]
    language = language_of(locale)
    assert emails, "the timeline notice and the feedback request always go out"
    for mail in emails:
        out, where = mail["out"], f"{variant}/{locale}/{mail['template']}"
        text, seen = flat(out.text), visible(out.html)
        # nothing hidden, no newsletter device
        assert not re.search(r"display\s*:\s*none", out.html, re.I), where
        assert "preheader" not in out.html, where
        # the subject does not start with the client's own name
        assert not out.subject.startswith(e["client"]), where
        _no_empty_section(out.html, out.text, where)
        _tables_have_headers(out.html, where)
        # text and HTML carry the same facts
        for fact in facts(e, locale):
            assert (fact in text) == (fact in seen), f"{where}: {fact!r} in only one part"
        urls_text = set(re.findall(r"https?://\S+", out.text))
        urls_html = set(re.findall(r'href="(https?://[^"]+)"', out.html))
        assert urls_text == urls_html, where
        # "everything delivered" only when it is true
        if not all(d["status"] == "delivered" for d in e["deliverables"]):
            assert ALL_DELIVERED[language] not in (out.subject + text).casefold(), where
        # a date already past is never presented as upcoming
        today = mail["at"].date()
        past = [v for v in _dated(e) if v < today]
        for paragraph in paragraphs(out.text):
            for value in past:
                if any(re.search(rf"(?<!\d){re.escape(flat(form))}(?!\d)", paragraph)
                       for form in date_forms(value, locale)):
                    assert any(w in paragraph.casefold() for w in PAST_WORDS[language]), \
                        f"{where}: past date {value} as if ahead: {paragraph}"
        # RFC 2045: no encoded body line over 76 characters
        msg = build_message(subject=out.subject, html=out.html, text=out.text,
                            sender=e["consultant"], to=e["contacts"]["to"], cc=mail["cc"],
                            message_id="<gate@whitfield.example>",
                            date=dt.datetime(2027, 1, 4, 9, tzinfo=dt.UTC), where=where)
        body = msg.as_bytes().split(b"\r\n\r\n", 1)[1]
        assert max(len(line) for line in body.split(b"\r\n")) <= 76, where


@pytest.mark.parametrize(("variant", "locale"), MATRIX)
def test_every_open_invoice_is_told_before_the_contract_ends(rendered, variant: str,
                                                             locale: str) -> None:
    e, emails = rendered[(variant, locale)]
    end = e["dates"]["contract_end"]
    before = " ".join(flat(m["out"].text) + visible(m["out"].html) for m in emails
                      if m["at"].date() < end)
    for invoice in e["invoices"]:
        if invoice["status"] != "paid":
            told = invoice["number"] in before and flat(money(
                invoice["amount"], invoice["currency"], locale)) in before
            assert told, f"{variant}/{locale}: {invoice['number']} never told before {end}"


@pytest.mark.parametrize("locale", LOCALES)
def test_everyone_in_to_is_greeted_and_whoever_must_act_is_asked_by_name(rendered,
                                                                          locale: str) -> None:
    e, emails = rendered[("two_to_and_a_cc", locale)]
    greeting = {"en": "Hi María José and Sam,", "fr": "Bonjour María José et Sam,",
                "de": "Hallo María José und Sam,", "es": "Hola, María José y Sam:"}
    for mail in emails:
        assert mail["out"].text.startswith(greeting[language_of(locale)]), mail["template"]
    access = next(m["out"] for m in emails if m["template"] == "access_revocation")
    # Tom (Cc) and Sam (To) each own a system: each is asked by name
    for name in ("Tom, ", "Sam, "):
        assert name in access.text and name in visible(access.html), (locale, name)
    many = rendered[("ten_of_everything", locale)][1][0]["out"]
    assert many.text.split("\n", 1)[0] in ("Hi all,", "Bonjour à tous,", "Hallo zusammen,",
                                           "Hola a todos:")


@pytest.mark.parametrize("locale", LOCALES)
def test_the_reminder_restates_the_questions_and_goes_to_to_only(rendered, locale: str) -> None:
    _, emails = rendered[("example", locale)]
    first = next(m for m in emails if m["template"] == "feedback_request")
    again = next(m for m in emails if m["template"] == "feedback_request_reminder")
    assert first["cc"] and again["cc"] == []
    asked = [q for q in first["out"].text.splitlines() if re.match(r"^[123]\. ", q)]
    assert len(asked) == 3 and all(q in again["out"].text for q in asked)
    assert "4. " in first["out"].text and "4. " in again["out"].text  # may I quote you


@pytest.mark.parametrize("locale", LOCALES)
def test_a_stage_with_nothing_to_say_is_skipped_with_its_reason(locale: str) -> None:
    e = engagement("none_of_anything", locale)
    seq = load_sequence(RULES, timing.parse_window(None, None), TEMPLATES)
    ctx = Context(zone=timing.load_zone("UTC"), calendar=timing.make_calendar(None))
    skipped = {i.stage: i.reasons[0] for i in plan_engagement(e, seq, {}, [], ctx)
               if i.status == "skipped"}
    assert skipped["deliverables_recap"].startswith("nothing to recap")
    assert skipped["access_revocation"].startswith("no shared access to remove")
    assert "support_offer" in skipped


def test_dates_and_money_follow_the_client_locale(rendered) -> None:
    expect = {"en_US": ("Friday, January 29, 2027", "$14,250.00"),
              "en_GB": ("Friday, 29 January 2027", "US$14,250.00"),
              "fr_FR": ("vendredi 29 janvier 2027", "14\u202f250,00\xa0$US"),
              "de_DE": ("Freitag, 29. Januar 2027", "14.250,00\xa0$"),
              "es_ES": ("viernes, 29 de enero de 2027", "14.250,00\xa0US$")}
    for locale, (end, amount) in expect.items():
        _, emails = rendered[("example", locale)]
        timeline = emails[0]["out"]
        assert end in flat(timeline.text) and end in visible(timeline.html), locale
        assert flat(amount) in flat(timeline.text), locale
        assert f'<html lang="{language_of(locale)}">' in timeline.html


def _dated(e: dict[str, Any]) -> list[dt.date]:
    return [*e["dates"].values(), *(d["date"] for d in e["deliverables"] if d.get("date")),
            *(a["revoke_date"] for a in e["shared_access"]),
            *(i["due"] for i in e["invoices"] if i.get("due"))]


def _no_empty_section(html: str, text: str, where: str) -> None:
    doc = lxml.html.fromstring(html)
    for p in doc.iter("p"):
        assert p.text_content().strip(), f"{where}: an empty paragraph"
    for lst in (*doc.iter("ol"), *doc.iter("ul")):
        assert lst.findall("li"), f"{where}: an empty list"
    for table in doc.iter("table"):
        if table.get("role") != "presentation":
            assert _own(table, "td"), f"{where}: a table with headers and no rows"
    lines = text.splitlines()
    for n, line in enumerate(lines[1:-1], start=1):
        # a paragraph announcing a list ("Final deliverables:") is followed by the list
        ends_paragraph = not lines[n + 1].strip() or re.match(r"^(- |\d+\. |https?://)",
                                                              lines[n + 1])
        if line.endswith(":") and not line.startswith(" ") and ends_paragraph:
            following = next((x for x in lines[n + 1:] if x.strip()), "")
            assert re.match(r"^(- |\d+\. |  |https?://)", following), \
                f"{where}: {line!r} announces nothing"


def _own(table: Any, cell: str) -> list[Any]:
    """The table's own cells of a kind, not those of tables nested in it."""
    return table.xpath(f"./tr/{cell} | ./*/tr/{cell}")


def _tables_have_headers(html: str, where: str) -> None:
    doc = lxml.html.fromstring(html)
    for table in doc.iter("table"):
        if table.get("role") == "presentation":
            assert not _own(table, "th"), f"{where}: a layout table with header cells"
        else:
            assert _own(table, "th"), f"{where}: a data table without header cells"


@pytest.mark.parametrize(("variant", "locale"), MATRIX)
def test_the_fast_message_writer_gives_the_email_package_s_bytes(rendered, variant, locale):
    """Every email of the default playbook, in every locale and variant, first and follow-up,
    with and without a Reply-To: mailflow.render.mime writes the very bytes build_message
    and as_bytes do (issue 18: the draft step no longer pays for the package's header parsing)."""
    e, emails = rendered[(variant, locale)]
    consultant = {"name": e["consultant"]["name"], "email": e["consultant"]["email"]}
    for n, mail in enumerate(emails):
        out = mail["out"]
        first = f"<20270104150000.{n:016x}@whitfield-consulting.example>"
        for thread in ((None, ()), (first, (first, f"<20270111150000.{n:016x}@w.example>"))):
            for reply_to in (None, "dana+k3v9q2m8x1zp@whitfield-consulting.example"):
                fields = dict(subject=out.subject, html=out.html, text=out.text,
                              sender=consultant, to=e["contacts"]["to"], cc=mail["cc"],
                              message_id=f"<20270104150000.{n + 1:016x}@whitfield.example>",
                              date=dt.datetime(2027, 1, 4, 15, tzinfo=dt.UTC),
                              where="engagement e", in_reply_to=thread[0],
                              references=thread[1], reply_to=reply_to)
                package, fast = built_both_ways(**fields)
                assert fast == package, (mail["template"], thread, reply_to)


@pytest.mark.parametrize(("variant", "locale"), MATRIX)
def test_every_email_s_css_is_inlined_as_premailer_inlines_it(rendered, variant: str,
                                                               locale: str) -> None:
    # the shape memo (render/inline.py) serves the whole playbook, byte for byte as premailer
    emails = INLINED[(variant, locale)]
    assert len(emails) == len(rendered[(variant, locale)][1])
    for before, after in emails:
        assert inline.shape_inline(before) == after == inline.premailer_inline(before)

