"""Every default offboarding email, rendered for the example engagement and its edge cases."""

from __future__ import annotations

import copy
import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mailflow.render.context import template_context
from mailflow.render.templates import Rendered, Renderer, longdate, money, shortdate

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates" / "emails"
EXAMPLE = ROOT / "mailflow" / "playbook" / "engagements" / "example.toml"
RULES = ROOT / "rules" / "offboarding.toml"

# (template, stage id, step)
STAGES = [
    ("timeline_notice", "timeline_notice", 0),
    ("deliverables_recap", "deliverables_recap", 0),
    ("support_offer", "support_offer", 0),
    ("access_revocation", "access_revocation", 0),
    ("feedback_request", "feedback_request", 0),
    ("feedback_request_reminder", "feedback_request", 1),
]
FORBIDDEN = [re.compile(r"\bNone\b"), re.compile("Undefined"), re.compile(r"\{\{|\}\}|\{%|%\}"),
             re.compile(r"\[\]"), re.compile(r"\bnan\b")]
NOW = dt.datetime(2027, 1, 26, 9, 30)
SENT = {"timeline_notice": dt.datetime(2026, 12, 30, 9, 30),
        "feedback_request": dt.datetime(2027, 2, 2, 9, 30)}


def example() -> dict[str, Any]:
    """A fresh copy of the example engagement."""
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def ten_deliverables(e: dict[str, Any]) -> None:
    e["deliverables"] = [
        {"name": f"Deliverable number {n}: {'quarterly ' * (n % 3)}report",
         "link": f"https://drive.example/northwind/d{n}", "status": "delivered",
         "date": dt.date(2026, 12, n + 1)}
        for n in range(1, 11)
    ]


def no_links(e: dict[str, Any]) -> None:
    e.pop("links")
    for d in e["deliverables"]:
        d.pop("link")


def long_names(e: dict[str, Any]) -> None:
    e["client"] = "The International Consolidated Northwind Traders and Logistics Holding Company"
    e["contacts"]["to"] = [{"name": "Alexandra Konstantinopoulou-Vanderbilt-Featherstonehaugh",
                            "email": "alexandra.k@northwind.example"}]
    e["consultant"]["title"] = ("Principal Consultant and Head of Data Platform Engineering, "
                                "Whitfield Consulting Partners International")
    e["deliverables"][0]["name"] = ("Data platform architecture, operational runbook, disaster "
                                    "recovery plan and the on-call escalation guide for all teams")
    e["shared_access"][0]["system"] = ("Northwind AWS production account (eu-west-1, us-east-1 "
                                       "and ap-southeast-2), including the break-glass roles")


def non_ascii(e: dict[str, Any]) -> None:
    e["client"] = "Ødegård & Søn Bygg AS"
    e["contacts"]["to"] = [{"name": "María José Álvarez", "first_name": "María José",
                            "email": "mj@odegard.example"}]
    e["contacts"]["cc"] = [{"name": "Zoë Ødegård", "email": "zoe@odegard.example"}]
    e["consultant"]["name"] = "山田太郎"
    e["deliverables"][1]["name"] = "Überarbeitete Berichte – 12 Jobs"
    e["invoices"][0]["currency"] = "JPY"
    e["invoices"][0]["amount"] = 1_500_000


def japanese_recipient(e: dict[str, Any]) -> None:
    e["contacts"]["to"] = [{"name": "山田太郎", "email": "yamada@northwind.example"}]


def minimal(e: dict[str, Any]) -> None:
    # only what an engagement cannot do without
    for key in ("deliverables", "invoices", "shared_access", "links", "support", "support_offer"):
        e.pop(key)
    e["dates"] = {"contract_end": e["dates"]["contract_end"]}
    e["consultant"] = {"name": "Dana Whitfield", "email": "dana@whitfield-consulting.example"}
    e["contacts"] = {"to": [{"name": "Tom Becker", "email": "tom@northwind.example"}]}


VARIANTS = {
    "example": lambda e: None,
    "no_deliverables": lambda e: e.pop("deliverables"),
    "empty_deliverables": lambda e: e.update(deliverables=[]),
    "ten_deliverables": ten_deliverables,
    "no_invoices": lambda e: e.pop("invoices"),
    "all_invoices_paid": lambda e: [i.update(status="paid") for i in e["invoices"]],
    "two_outstanding": lambda e: [i.update(status="outstanding") for i in e["invoices"]],
    "no_shared_access": lambda e: e.pop("shared_access"),
    "no_links": no_links,
    "long_names": long_names,
    "non_ascii": non_ascii,
    "japanese_recipient": japanese_recipient,
    "no_cc": lambda e: e["contacts"].pop("cc"),
    "no_support_section": lambda e: e.pop("support"),
    "no_phone_no_title": lambda e: [e["consultant"].pop(k) for k in ("phone", "title")],
    "minimal": minimal,
    "recipient_without_name": lambda e: e["contacts"].update(
        to=[{"email": "accounts@northwind.example", "name": "", "first_name": ""}]),
}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


def render(renderer: Renderer, e: dict[str, Any], template: str, stage: str, step: int,
           now: dt.datetime = NOW) -> Rendered:
    snapshot = copy.deepcopy(e)
    ctx = template_context(
        e, sender_name=e["consultant"]["name"], sender_email=e["consultant"]["email"],
        stage_id=stage, stage_name=stage.replace("_", " ").capitalize(), step=step,
        now_local=now, sent=SENT, recipient=e["contacts"]["to"][0],
    )
    out = renderer.render(template, ctx)
    assert e == snapshot, "rendering must not change the engagement"
    return out


def engagement(variant: str) -> dict[str, Any]:
    e = example()
    VARIANTS[variant](e)
    return e


def visible_html(html: str) -> str:
    """The HTML's text as a reader sees it (tags dropped, entities decoded), for 'contains'."""
    import html as htmlmod

    body = html.split("<body", 1)[1]
    return re.sub(r"\s+", " ", htmlmod.unescape(re.sub(r"<[^>]+>", " ", body)))


def flat(text: str) -> str:
    """Text with line wrapping undone, for 'contains' checks on long values."""
    return re.sub(r"\s+", " ", text)


def test_rule_file_templates_all_exist(renderer: Renderer) -> None:
    rules = tomllib.loads(RULES.read_text(encoding="utf-8"))
    names = [s["template"] for s in rules["stage"]]
    names += [r["template"] for s in rules["stage"] for r in s.get("reminder", [])]
    assert sorted(names) == sorted(t for t, _, _ in STAGES)
    for name in names:
        assert renderer.has_template(name), name


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize(("template", "stage", "step"), STAGES)
def test_every_stage_renders_cleanly(renderer: Renderer, variant: str, template: str, stage: str,
                                     step: int) -> None:
    e = engagement(variant)
    out = render(renderer, e, template, stage, step)
    seen_html = visible_html(out.html)
    text = flat(out.text)
    for pattern in FORBIDDEN:
        for part in (out.subject, out.text, seen_html):
            assert not pattern.search(part), f"{pattern.pattern!r} in {template}: {part}"
    assert "\n\n\n" not in out.text
    assert out.subject and "\n" not in out.subject and len(out.subject) < 140
    assert out.html.startswith("<!DOCTYPE html>")
    assert "<style" not in out.html and "<link" not in out.html and 'class="' not in out.html
    # the greeting uses the first name
    to = e["contacts"]["to"][0]
    first = to.get("first_name") or " ".join(to["name"].split()[:1])
    greeting = f"Hi {first}," if first else "Hello,"
    assert out.text.startswith(f"{greeting}\n\n")
    assert greeting in seen_html
    # the signature: the offboarding lead's name, title, email and phone
    c = e["consultant"]
    for value in (c["name"], c.get("title"), c["email"], c.get("phone")):
        if value:
            assert value in text
            assert value in seen_html
    assert "\n-- \n" + c["name"] + "\n" in out.text
    # the client is named (the reminder is a reply in the same thread, so it need not)
    if template != "feedback_request_reminder":
        assert e["client"] in out.subject + text
        assert e["client"] in out.subject + seen_html
    # the text part reads on its own: wrapped, URLs whole
    for line in out.text.splitlines():
        assert len(line) <= 72 or " " not in line.strip() or "://" in line, line


def test_no_exclamation_spam_or_cliches(renderer: Renderer) -> None:
    e = example()
    for template, stage, step in STAGES:
        out = render(renderer, e, template, stage, step)
        assert out.text.count("!") == 0, template
        for cliche in ("hope this email finds you", "touch base", "circle back", "reach out"):
            assert cliche not in out.text.lower()


@pytest.mark.parametrize("variant", ["example", "ten_deliverables", "long_names", "non_ascii"])
def test_deliverables_are_listed(renderer: Renderer, variant: str) -> None:
    e = engagement(variant)
    recap = render(renderer, e, "deliverables_recap", "deliverables_recap", 0)
    timeline = render(renderer, e, "timeline_notice", "timeline_notice", 0)
    html = visible_html(recap.html)
    text = flat(recap.text)
    assert e["links"]["deliverables_folder"] in recap.text
    assert f'href="{e["links"]["deliverables_folder"]}"' in recap.html
    for d in e["deliverables"]:
        assert d["name"] in text and d["name"] in html
        assert d["link"] in recap.text
        assert f'href="{d["link"]}"' in recap.html
        assert shortdate(d["date"]) in text and shortdate(d["date"]) in html
        assert d["status"] in text.lower()
        assert d["name"] in flat(timeline.text) and d["name"] in visible_html(timeline.html)
    # in the order given
    positions = [text.index(d["name"]) for d in e["deliverables"]]
    assert positions == sorted(positions)


def test_no_deliverables_still_asks_for_sign_off(renderer: Renderer) -> None:
    e = engagement("no_deliverables")
    recap = render(renderer, e, "deliverables_recap", "deliverables_recap", 0)
    assert "everything you need" in recap.text
    assert e["links"]["deliverables_folder"] in recap.text
    assert "missing" in recap.text
    timeline = render(renderer, e, "timeline_notice", "timeline_notice", 0)
    assert "Final deliverables" not in timeline.text
    assert "Final deliverable" not in visible_html(timeline.html)


def test_timeline_notice_content(renderer: Renderer) -> None:
    e = example()
    # rendered when it goes out, 30 days before the end: the handover is still ahead
    out = render(renderer, e, "timeline_notice", "timeline_notice", 0,
                 now=dt.datetime(2026, 12, 30, 9, 30))
    html = visible_html(out.html)
    end = longdate(e["dates"]["contract_end"])
    handover = longdate(e["dates"]["handover_date"])
    for part in (out.text, html):
        assert end in part and handover in part
        assert "lead the offboarding" in part
        assert "just reply" in part
    assert e["links"]["offboarding_doc"] in out.text
    assert f'href="{e["links"]["offboarding_doc"]}"' in out.html
    # key dates in date order: handover before the end
    assert out.text.index(handover) < out.text.rindex(end)


def test_access_revocation_lists_systems_dates_and_owners(renderer: Renderer) -> None:
    e = example()
    out = render(renderer, e, "access_revocation", "access_revocation", 0)
    html = visible_html(out.html)
    for a in e["shared_access"]:
        assert a["system"] in out.text and a["system"] in html
        # one style for the dates of a list, in both parts
        assert shortdate(a["revoke_date"]) in out.text
        assert shortdate(a["revoke_date"]) in html
    assert "Tom Becker (Northwind IT)" in out.text and "Tom Becker (Northwind IT)" in html
    # the consultant's own systems read "me", not their own name in the third person
    assert "Removed by: me" in out.text
    # sorted by revoke date: the Slack channel (5 Feb) comes last
    assert out.text.index("Slack shared channel") > out.text.index("AWS production account")


def test_access_revocation_invoices(renderer: Renderer) -> None:
    e = example()
    out = render(renderer, e, "access_revocation", "access_revocation", 0)
    html = visible_html(out.html)
    assert "WC-2026-118" in out.text and "WC-2026-118" in html
    # en_US, the default locale: "$14,250.00", month before day
    assert "$14,250.00" in out.text and "$14,250.00" in html
    assert "Jan 15, 2027" in out.text and "Jan 15, 2027" in html
    assert "WC-2026-104" not in out.text + html  # paid: not mentioned
    assert "One invoice is still open" in out.text
    assert "and the open invoice" in out.subject


def test_access_revocation_two_invoices(renderer: Renderer) -> None:
    e = engagement("two_outstanding")
    out = render(renderer, e, "access_revocation", "access_revocation", 0)
    assert "Two invoices are still open" in out.text
    for i in e["invoices"]:
        assert i["number"] in out.text and money(i["amount"], i["currency"]) in out.text
    assert out.subject.endswith("and open invoices")


def test_access_revocation_without_invoices(renderer: Renderer) -> None:
    none = render(renderer, engagement("no_invoices"), "access_revocation", "access_revocation", 0)
    assert "invoice" not in none.text.lower() and "invoice" not in none.subject.lower()
    paid = render(renderer, engagement("all_invoices_paid"), "access_revocation",
                  "access_revocation", 0)
    assert "All invoices are settled" in paid.text
    assert "All invoices are settled" in visible_html(paid.html)
    assert "invoice" not in paid.subject.lower()


def test_non_ascii_invoice_in_yen(renderer: Renderer) -> None:
    e = engagement("non_ascii")
    out = render(renderer, e, "access_revocation", "access_revocation", 0)
    assert "¥1,500,000" in out.text
    # subjects never start with the client's own name (issue 16): it reads like a vendor ticket
    assert not out.subject.startswith("Ødegård & Søn Bygg AS")
    feedback = render(renderer, e, "feedback_request", "feedback_request", 0)
    assert "Ødegård &amp; Søn Bygg AS" in feedback.html  # escaped once, not twice
    assert "Ødegård & Søn Bygg AS" in flat(feedback.text)
    assert "山田太郎" in out.html and "\n-- \n山田太郎\n" in out.text


def test_support_offer(renderer: Renderer) -> None:
    e = example()
    out = render(renderer, e, "support_offer", "support_offer", 0)
    html = visible_html(out.html)
    for part in (flat(out.text), html):
        assert e["support"]["summary"] in part
        assert e["support"]["price"] in part
        assert "just reply" in part
        assert "no pressure" in part
    generic = render(renderer, engagement("no_support_section"), "support_offer",
                     "support_offer", 0)
    assert "as-needed basis" in generic.text and "cost" not in generic.text


def test_feedback_request(renderer: Renderer) -> None:
    e = example()
    out = render(renderer, e, "feedback_request", "feedback_request", 0)
    html = visible_html(out.html)
    assert out.text.count("?") >= 2
    assert "1. " in out.text and "3. " in out.text
    assert e["links"]["feedback_form"] in out.text
    assert e["links"]["meeting"] in out.text
    assert f'href="{e["links"]["feedback_form"]}"' in out.html
    assert f'href="{e["links"]["meeting"]}"' in out.html
    assert "thank you" in out.text.lower() and "thank you" in html.lower()
    bare = render(renderer, engagement("no_links"), "feedback_request", "feedback_request", 0)
    assert "http" not in bare.text and "href=\"http" not in bare.html
    assert "reply with a time" in bare.text


def test_reminder_is_the_same_thread(renderer: Renderer) -> None:
    e = example()
    first = render(renderer, e, "feedback_request", "feedback_request", 0)
    again = render(renderer, e, "feedback_request_reminder", "feedback_request", 1)
    assert again.subject == first.subject
    assert not again.subject.lower().startswith("re:")  # the sender adds it
    assert "Tuesday, February 2" in again.text  # when the first one went out
    assert len(again.text) < len(first.text)


def test_reminder_without_a_recorded_first_send(renderer: Renderer) -> None:
    e = example()
    ctx = template_context(
        e, sender_name="Dana", sender_email="dana@x.example", stage_id="feedback_request",
        stage_name="Feedback request", step=1, now_local=NOW, sent={},
        recipient=e["contacts"]["to"][0],
    )
    out = renderer.render("feedback_request_reminder", ctx)
    assert "my note –" in out.text


def test_context_shape() -> None:
    e = engagement("minimal")
    ctx = template_context(
        e, sender_name="Dana", sender_email="dana@x.example", stage_id="timeline_notice",
        stage_name="Timeline notice", step=0, now_local=NOW, sent={},
        recipient={"name": "Zoë Ødegård", "email": "zoe@x.example"},
    )
    assert ctx["deliverables"] == [] and ctx["invoices"] == [] and ctx["shared_access"] == []
    assert ctx["outstanding_invoices"] == [] and ctx["contacts"]["cc"] == []
    assert ctx["links"] == dict.fromkeys(
        ("offboarding_doc", "deliverables_folder", "feedback_form", "meeting", "payment"))
    assert ctx["support"] == {"summary": None, "price": None, "details": None}
    assert ctx["data"] == {}
    assert ctx["consultant"]["phone"] is None and ctx["consultant"]["title"] is None
    assert ctx["recipient"]["first_name"] == "Zoë"
    assert ctx["stage"] == {"id": "timeline_notice", "name": "Timeline notice"}
    assert ctx["today"] == NOW.date() and ctx["first_sent"] is None
    assert ctx["contract_end"] == e["dates"]["contract_end"]
    assert ctx["sender"] == {"name": "Dana", "email": "dana@x.example"}


def test_context_sorts_access_and_flags_invoices() -> None:
    e = example()
    ctx = template_context(
        e, sender_name="Dana", sender_email="dana@x.example", stage_id="access_revocation",
        stage_name="Access revocation notice", step=0, now_local=NOW, sent=SENT,
        recipient=e["contacts"]["to"][0],
    )
    dates = [a["revoke_date"] for a in ctx["shared_access"]]
    assert dates == sorted(dates)
    assert [a["by_me"] for a in ctx["shared_access"]] == [True, False, True]
    [open_invoice] = ctx["outstanding_invoices"]
    assert open_invoice["number"] == "WC-2026-118" and open_invoice["overdue"] is True
    assert [m["label"] for m in ctx["milestones"]] == ["Handover", "Last day of the engagement"]


def test_stored_engagement_record_renders(renderer: Renderer) -> None:
    # the runner renders the validated, stored record (ISO strings hydrated back to dates, empty
    # strings and None for absent optional fields), not the raw TOML
    engagements = pytest.importorskip("mailflow.config.engagements")
    record = engagements.hydrate(engagements.load_engagement_file(EXAMPLE, "UTC"))
    for template, stage, step in STAGES:
        out = render(renderer, record, template, stage, step)
        for pattern in FORBIDDEN:
            assert not pattern.search(out.text + visible_html(out.html)), (template, pattern)
    access = render(renderer, record, "access_revocation", "access_revocation", 0)
    assert "$14,250.00" in access.text and "Removed by: me" in access.text
