"""Seeded data for the benchmark: realistic engagements, their messages and events, and replies.

A handful of *seed* engagements (different time zones, contract ends, optional stages) are
walked through the real code path (`add_engagement`, `run_tick` against an SMTP server,
`approve`) up to the benchmark's clock. Thousands of engagements are then cloned from them:
the same records and journal events, with new ids, client names, contacts, Message-IDs and
reply tokens. The checkpoint and the journal are written in exactly the shapes `Store` writes.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from mailflow.config.loading import load_project
from mailflow.desk.actions import add_engagement, approve
from mailflow.desk.run import run_tick
from mailflow.project import Project, init_project
from mailflow.store import BODIES_DIR, DB_NAME, JOURNAL_NAME, TABLES, AtomicJSONStorage, Store

SENDER = ("Dana Whitfield", "dana@whitfield-consulting.example")
HOME_ZONE = "America/New_York"
# the benchmark's clock: a Saturday, so nothing can go out; about half of every engagement's
# emails are sent, the next one is drafted and waits for approval, the rest are planned
NOW = dt.datetime(2027, 1, 23, 12, 0, tzinfo=dt.UTC)
WALK_FROM = dt.date(2026, 12, 14)
TICK_TIMES = ("08:00", "10:30", "15:00")  # New York time; the walk approves drafts at 08:00

_ZONES = ("America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London",
          "Europe/Berlin", "America/Toronto")
_CONTRACT_ENDS = ("2027-01-27", "2027-01-29", "2027-02-03", "2027-02-05", "2027-02-12")
_COMPANY_A = ("North", "Blue", "Silver", "Granite", "Harbor", "Maple", "Cedar", "Summit",
              "River", "Iron", "Bright", "Oak", "Pine", "Stone", "Lake", "Red", "Golden",
              "Clear", "West", "East")
_COMPANY_B = ("wind", "field", "ridge", "point", "bridge", "works", "gate", "light", "stone",
              "haven", "crest", "vale", "brook", "line", "port")
_COMPANY_C = ("Traders", "Logistics", "Health", "Analytics", "Foods", "Energy", "Partners",
              "Labs", "Retail", "Insurance", "Media", "Systems")
_FIRST = ("María José", "Tom", "Aisha", "Lars", "Chen", "Priya", "Jonas", "Olivia", "Mateo",
          "Fatima", "Noah", "Sofia", "Kenji", "Emma", "Lukas", "Chloé", "Ravi", "Hannah")
_LAST = ("Álvarez", "Becker", "Okafor", "Lindqvist", "Wang", "Raman", "Müller", "Smith",
         "Rossi", "Haddad", "Johnson", "García", "Tanaka", "Dubois", "Novak", "Kowalski")

# placeholders in the seeds, replaced in every clone (unique, and never a substring of
# anything else mailflow writes)
_SEED_ID = "zqseed{:02d}"
_SEED_CLIENT = "Zqclient{:02d} Corporation"
_SEED_FIRST = "Zqfirst{:02d}"
_SEED_LAST = "Zqlast{:02d}"
_SEED_DOMAIN = "zqdomain{:02d}.example"


@dataclass
class Seed:
    """The walked seed project's records and journal events, grouped by engagement."""

    n: int
    records: dict[str, dict[str, list[dict]]]  # seed id -> table -> records
    events: dict[str, list[dict]]  # seed id -> its events in journal order
    digests: dict[str, str]  # renderer_digest, config_digest of the seed project
    bodies: Path | None = None  # the seed project's body store (clones refer to its bodies)


def new_project(root: Path, *, smtp_port: int = 1025, per_minute: int = 20,
                per_day: int = 400, approval: bool = True, all_week: bool = False) -> Project:
    """A project from the default playbook (optionally without approval, with a high limit,
    with a send window on every day of the week)."""
    project = init_project(root, sender_name=SENDER[0], sender_email=SENDER[1],
                           time_zone=HOME_ZONE)
    cfg = project.config_path.read_text()
    cfg = cfg.replace("port = 1025", f"port = {smtp_port}")
    cfg = re.sub(r"^per_minute = \d+", f"per_minute = {per_minute}", cfg, flags=re.M)
    cfg = re.sub(r"^per_day = \d+", f"per_day = {per_day}", cfg, flags=re.M)
    if all_week:
        cfg = cfg.replace('days = "mon-fri"', 'days = "mon-sun"')
    project.config_path.write_text(cfg)
    if not approval:
        rules = project.rules_dir / "offboarding.toml"
        rules.write_text(rules.read_text().replace("approval = true", "approval = false"))
    return project


def engagement_toml(i: int, eid: str, client: str, first: str, last: str, domain: str,
                    zone: str, contract_end: str, *, support: bool, access: bool,
                    cc: bool) -> str:
    """An engagement file in the example's shape."""
    end = dt.date.fromisoformat(contract_end)
    lines = [
        f'id = "{eid}"', f'client = "{client}"', f'time_zone = "{zone}"',
        f"support_offer = {'true' if support else 'false'}", "",
        "[dates]", f"start = {end - dt.timedelta(days=300 + 7 * i)}",
        f"contract_end = {contract_end}", f"handover_date = {end - dt.timedelta(days=7)}", "",
        "[consultant]", f'name = "{SENDER[0]}"', f'email = "{SENDER[1]}"',
        'title = "Principal Consultant, Whitfield Consulting"', 'phone = "+1 617 555 0142"', "",
        "[contacts]",
        f'to = [{{ name = "{first} {last}", first_name = "{first}", '
        f'email = "{_slug(first)}.{_slug(last)}@{domain}" }}]',
    ]
    if cc:
        lines.append(f'cc = [{{ name = "Tom Becker", email = "it-{_slug(first)}@{domain}" }}]')
    lines += [
        "", "[links]", f'offboarding_doc = "https://docs.example/{eid}/offboarding-plan"',
        f'deliverables_folder = "https://drive.example/{eid}/client-deliverables"',
        'feedback_form = "https://forms.example/whitfield-feedback"',
        'meeting = "https://cal.example/dana/offboarding-30min"', "",
        "[support]", 'summary = "a light retainer of up to 6 hours a month for questions"',
        'price = "USD 1,800 per month, month to month"', "",
    ]
    for k in range(1 + i % 3):
        lines += ["[[deliverables]]", f'name = "Deliverable {k + 1}: pipeline set {k}"',
                  f'link = "https://drive.example/{eid}/client-deliverables/{k}"',
                  f'status = "{"delivered" if k else "scheduled"}"',
                  f"date = {end - dt.timedelta(days=10 * k + 5)}", ""]
    if access:
        for system in ("AWS production account", "GitHub organisation"):
            lines += ["[[shared_access]]", f'system = "{client} {system}"',
                      'owner = "Dana Whitfield"', f"revoke_date = {contract_end}", ""]
    for k in range(2):
        lines += ["[[invoices]]", f'number = "WC-2026-{100 + 7 * i + k}"',
                  f"amount = {14250 + 100 * i}.00", 'currency = "USD"',
                  f"due = {end - dt.timedelta(days=14 * k)}",
                  f'status = "{"outstanding" if k == 0 else "paid"}"', ""]
    return "\n".join(lines) + "\n"


def walk_seeds(root: Path, smtp_port: int, n: int = 12) -> Seed:
    """Create n seed engagements and walk them with the real code up to NOW."""
    project = new_project(root, smtp_port=smtp_port, per_minute=1000, per_day=100000)
    loaded = load_project(project)
    store = Store(project.state_dir)
    start = dt.datetime.combine(WALK_FROM, dt.time(8), dt.UTC)
    with store.writer() as w:
        for i in range(n):
            text = engagement_toml(
                i, _SEED_ID.format(i), _SEED_CLIENT.format(i), _SEED_FIRST.format(i),
                _SEED_LAST.format(i), _SEED_DOMAIN.format(i), _ZONES[i % len(_ZONES)],
                _CONTRACT_ENDS[i % len(_CONTRACT_ENDS)], support=i % 3 != 2,
                access=i % 4 != 3, cc=i % 2 == 0)
            path = project.engagements_dir / f"seed{i}.toml"
            path.write_text(text)
            add_engagement(w, loaded, path, start)
        w.save()
    zone = loaded.zone
    day = WALK_FROM
    while True:
        for t in TICK_TIMES:
            local = dt.datetime.combine(day, dt.time.fromisoformat(t), zone)
            now = local.astimezone(dt.UTC)
            if now > NOW:
                break
            run_tick(loaded, store, now)
            if t == "08:00":
                with store.writer() as w:
                    for msg in list(w.state.messages.values()):
                        if msg["state"] == "awaiting_approval":
                            approve(w, msg, "dana", now)
                    w.save()
        else:
            day += dt.timedelta(days=1)
            continue
        break
    run_tick(loaded, store, NOW)  # the state as cron leaves it at NOW
    state = store.load()
    records: dict[str, dict[str, list[dict]]] = {}
    for table in TABLES:
        for rec in getattr(state, table).values():
            eid = rec.get("engagement") if table != "engagements" else rec["id"]
            if eid:
                records.setdefault(eid, {t: [] for t in TABLES})[table].append(rec)
    events: dict[str, list[dict]] = {}
    for event in store.events():
        events.setdefault(event.get("engagement", ""), []).append(event)
    return Seed(n, records, events, _digests(loaded), project.state_dir / BODIES_DIR)


def _digests(loaded) -> dict[str, str]:  # noqa: ANN001 - mailflow.config.loading.Loaded
    """What the stored plan and render signatures of a project are made of."""
    return {"renderer": loaded.renderer_digest, "config": loaded.config_digest,
            "rules": loaded.sequences["offboarding"].digest}


class Names:
    """A seeded source of client names, contacts, ids and tokens."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def company(self) -> str:
        r = self.rng
        return f"{r.choice(_COMPANY_A)}{r.choice(_COMPANY_B)} {r.choice(_COMPANY_C)}"

    def person(self) -> tuple[str, str]:
        return self.rng.choice(_FIRST), self.rng.choice(_LAST)

    def hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def token(self, n: int = 12) -> str:
        return "".join(self.rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(n))


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def clone(seed: Seed, count: int, names: Names, digests: dict[str, str], start: int = 0):
    """Yield (engagement id, records by table, events) for `count` engagements cloned from seeds.

    Every string that identifies the seed (id, client, contacts' names and domain, each
    Message-ID's random part, each reply token) is replaced in the records and events alike,
    and so are the seed project's digests by those of the target project (`digests`), so the
    clones count as planned and rendered for it.
    """
    seed_texts = {}
    for i in range(seed.n):
        sid = _SEED_ID.format(i)
        blob = json.dumps({"records": seed.records[sid], "events": seed.events.get(sid, [])},
                          ensure_ascii=False)
        mids = sorted(set(re.findall(r"<\d{14}\.([0-9a-f]{16})@", blob)))
        tokens = sorted({m.get("reply_token") for m in seed.records[sid]["messages"]
                         if m.get("reply_token")})
        seed_texts[i] = (sid, blob, mids, tokens)
    for n in range(start, start + count):
        i = n % seed.n
        sid, blob, mids, tokens = seed_texts[i]
        company = names.company()
        first, last = names.person()
        eid = f"{_slug(company)}-{n:05d}"
        subs = {sid: eid, _SEED_CLIENT.format(i): company, _SEED_FIRST.format(i): first,
                _SEED_FIRST.format(i).lower(): _slug(first), _SEED_LAST.format(i): last,
                _SEED_LAST.format(i).lower(): _slug(last),
                _SEED_DOMAIN.format(i): f"{_slug(company)}.example"}
        subs.update({m: names.hex(16) for m in mids})
        subs.update({t: names.token() for t in tokens})
        subs.update({seed.digests[k]: v for k, v in digests.items()})
        pattern = re.compile("|".join(re.escape(k) for k in sorted(subs, key=len, reverse=True)))
        data = json.loads(pattern.sub(lambda m, subs=subs: subs[m.group(0)], blob))
        yield eid, data["records"], data["events"]


def write_store(project: Project, seed: Seed, count: int, *, seed_value: int = 7,
                extra: list[tuple[str, dict, list]] | None = None) -> dict:
    """Write a project's checkpoint and journal: `count` cloned engagements (plus `extra`)."""
    digests = _digests(load_project(project))
    state_dir = project.state_dir
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if seed.bodies is not None and seed.bodies.is_dir():
        # clones keep their seed's body references: the seed's wording, a valid body
        shutil.copytree(seed.bodies, state_dir / BODIES_DIR, dirs_exist_ok=True)
    names = Names(seed_value)
    tables: dict[str, dict[str, dict]] = {t: {} for t in TABLES}
    journal = state_dir / JOURNAL_NAME
    seq = 0
    sent = messages = 0
    with journal.open("wb") as f:
        for _eid, recs, events in [*clone(seed, count, names, digests), *(extra or [])]:
            for table in TABLES:
                key = {"engagements": "id", "messages": "key", "replies": "id",
                       "cursors": "folder", "digests": "id"}[table]
                for rec in recs.get(table, []):
                    if table == "replies":
                        rec = {**rec, "id": str(len(tables["replies"]) + 1)}
                    tables[table][rec[key]] = rec
                    if table == "messages":
                        messages += 1
                        sent += bool(rec.get("sent_at"))
            for event in events:
                seq += 1
                f.write(json.dumps({**event, "seq": seq}, ensure_ascii=False).encode() + b"\n")
        offset = f.tell()
    data = {t: {str(i): doc for i, doc in enumerate(tables[t].values(), start=1)}
            for t in TABLES}
    data["meta"] = {"1": {"journal_offset": offset, "seq": seq}}
    AtomicJSONStorage(state_dir / DB_NAME).write(data)
    journal.chmod(0o600)
    return {"engagements": len(tables["engagements"]), "messages": messages, "sent": sent,
            "events": seq, "checkpoint_bytes": (state_dir / DB_NAME).stat().st_size,
            "journal_bytes": offset}
