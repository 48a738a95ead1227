"""Bad input everywhere: the config, rule and engagement loaders fed mutated and random
TOML-shaped documents raise only MailflowErrors (a one-line message naming file and key), never
another exception; typos are named with a suggestion; the CLI exits 2 and sends nothing."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailflow.config.engagements import validate_engagement
from mailflow.config.loading import load_project
from mailflow.errors import ConfigError, MailflowError
from mailflow.project import init_project
from tests.helpers import SEND_AT, fill_batch, firsts, told_only

PLAYBOOK = Path(__file__).resolve().parents[2] / "mailflow" / "playbook"


# -- a tiny TOML writer (every table inline, every key quoted) --------------------------------

def _string(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    return out.replace("\x7f", "\\u007F")  # JSON leaves DEL bare; TOML wants it escaped


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_string(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def dumps(doc: dict) -> str:
    return "".join(f"{_string(k)} = {toml_value(v)}\n" for k, v in doc.items())


# -- strategies ---------------------------------------------------------------------------------

WORDS = ["approval", "aproval", "late", "on_reply", "window", "due", "template", "when", "id",
         "stage", "reminder", "after", "max", "at", "name", "email", "to", "cc", "dates",
         "contract_end", "start", "end", "days", "host", "port", "security", "timeout",
         "per_minute", "grace", "country", "subdiv", "extra", "folders", "time_zone", "client",
         "authserv_id", "trust_contact_domains"]
SAMPLES = ["30 days before contract_end", "2 business days", "on contract_end", "mon-fri",
           "09:00", "24:00", "25:61", "sat-mon", "previous", "2 days after previous",
           "3 business days after reply to timeline_notice", "reply:nope", "x@y.example",
           "no at sign", "a@b", "Dana\r\nBcc: evil@x.example", "America/New_York",
           "Mars/Olympus", "", " ", "tls", "none", "starttls", "hold", "send", "stop", "US",
           "ZZ", "{{ broken", "support_offer and", "-1 days before contract_end"]
keys = st.one_of(st.sampled_from(WORDS), st.text(max_size=8))
scalars = st.one_of(
    st.sampled_from(SAMPLES), st.text(max_size=12), st.integers(-10**20, 10**20),
    st.integers(-3, 100_000), st.floats(), st.booleans(), st.dates(),
    st.datetimes(), st.times())
values = st.recursive(scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.dictionaries(keys, kids, max_size=3)), max_leaves=8)


def _containers(node: Any, path=()) -> list[tuple]:
    found = [path] if isinstance(node, dict | list) else []
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for k, v in items:
        found += _containers(v, path + (k,))
    return found


def _at(node: Any, path: tuple) -> Any:
    for p in path:
        node = node[p]
    return node


@st.composite
def mutated(draw, base: dict) -> dict:
    """base with 1-4 random changes: values replaced, keys removed, unknown keys added."""
    doc = json.loads(json.dumps(base, default=str))  # a deep copy (dates as text: also bad)
    doc = _redate(base, doc)
    for _ in range(draw(st.integers(1, 4))):
        paths = _containers(doc)
        target = _at(doc, draw(st.sampled_from(paths)))
        op = draw(st.sampled_from(["set", "delete", "add"]))
        if isinstance(target, dict):
            if op == "add" or not target:
                target[draw(keys)] = draw(values)
            elif op == "delete":
                del target[draw(st.sampled_from(sorted(target)))]
            else:
                target[draw(st.sampled_from(sorted(target)))] = draw(values)
        elif target:
            i = draw(st.integers(0, len(target) - 1))
            if op == "delete":
                del target[i]
            else:
                target[i] = draw(values)
        else:
            target.append(draw(values))
    return doc


def _redate(orig: Any, copy: Any) -> Any:
    """Put the real dates back (json turned them into text)."""
    if isinstance(orig, dict):
        return {k: _redate(orig[k], copy[k]) for k in orig}
    if isinstance(orig, list):
        return [_redate(o, c) for o, c in zip(orig, copy, strict=True)]
    return orig


EXAMPLE = tomllib.loads((PLAYBOOK / "engagements" / "example.toml").read_text())
RULES = tomllib.loads(next((PLAYBOOK / "rules").glob("*.toml")).read_text())


@pytest.fixture(scope="module")
def project():
    folder = Path(tempfile.mkdtemp(prefix="mailflow-fuzz-"))
    try:
        yield init_project(folder / "p", sender_name="Dana", sender_email="dana@example.com",
                           time_zone="UTC")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# MAILFLOW_FUZZ_EXAMPLES=5000 for a long hunt; the suite's default stays quick
FUZZ = settings(max_examples=int(os.environ.get("MAILFLOW_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def only_mailflow_errors(fn, *args) -> MailflowError | None:
    try:
        fn(*args)
    except MailflowError as err:
        text = str(err)
        assert "\n" not in text.strip() or "invalid TOML" in text, text
        return err
    return None


@FUZZ
@given(doc=mutated(EXAMPLE))
def test_engagement_validation_raises_only_mailflow_errors(doc):
    only_mailflow_errors(validate_engagement, doc, Path("engagements/fuzz.toml"), "UTC")


@FUZZ
@given(doc=st.dictionaries(keys, values, max_size=6))
def test_random_engagement_documents_raise_only_mailflow_errors(doc):
    only_mailflow_errors(validate_engagement, doc, Path("engagements/fuzz.toml"), "UTC")


@FUZZ
@given(doc=mutated(RULES))
def test_rule_loading_raises_only_mailflow_errors(project, doc):
    rules = project.rules_dir / "offboarding.toml"
    original = rules.read_bytes()
    try:
        rules.write_text(dumps(doc))
        err = only_mailflow_errors(load_project, project)
        if err is not None:
            assert str(rules) in str(err) or str(project.config_path) in str(err), err
    finally:
        rules.write_bytes(original)


@FUZZ
@given(data=st.data())
def test_config_loading_raises_only_mailflow_errors(project, data):
    path = project.config_path
    original = path.read_bytes()
    base = tomllib.loads(original.decode())
    base["imap"] = {"host": "imap.example.com", "security": "tls", "username": "dana",
                    "password_env": "X", "folders": ["INBOX"],
                    "authserv_id": "mx.example.com", "trust_contact_domains": False}
    base["holidays"] = {"country": "US", "extra": [dt.date(2026, 12, 24)]}
    doc = data.draw(mutated(base))
    try:
        path.write_text(dumps(doc))
        err = only_mailflow_errors(load_project, project)
        if err is not None:
            assert str(path) in str(err), err
    finally:
        path.write_bytes(original)


@FUZZ
@given(text=st.text(max_size=200))
def test_garbage_files_are_config_errors(project, text):
    path = project.config_path
    original = path.read_bytes()
    try:
        path.write_text(text)
        only_mailflow_errors(load_project, project)
    finally:
        path.write_bytes(original)


# -- the messages a consultant sees -------------------------------------------------------------

@pytest.mark.parametrize("where,typo,known", [
    ("defaults", "aproval", "approval"), ("stage", "templat", "template"),
    ("stage", "on_replies", "on_reply")])
def test_a_typo_in_a_rule_file_is_named_with_a_suggestion_and_nothing_is_sent(
        proj, smtp_server, where, typo, known):
    fill_batch(proj, 1)
    rules = proj.root / "rules" / "offboarding.toml"
    text = rules.read_text()
    anchor = "[defaults]\n" if where == "defaults" else "[[stage]]\n"
    rules.write_text(text.replace(anchor, f"{anchor}{typo} = 1\n", 1))
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    assert str(rules) in lines[0] and f"unknown key (did you mean '{known}'?)" in lines[0]
    assert typo in lines[0]
    assert smtp_server.client_mail == []
    assert {m["state"] for m in firsts(proj)} == {"approved"}


def test_a_typo_in_mailflow_toml_exits_2_naming_file_and_key(proj, smtp_server):
    fill_batch(proj, 1)
    proj.set_config(r"^per_day = .*$", "per_dya = 100")
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        f"mailflow: {proj.project.config_path}: schedule.per_dya: unknown key (did you mean "
        "'per_day'?); expected one of: review_days, grace, per_minute, per_day, "
        "retry_lifetime_hours, send_batch"]
    assert smtp_server.client_mail == []


def test_a_toml_syntax_error_names_the_file_and_line(proj, smtp_server):
    fill_batch(proj, 1)
    proj.set_config(r"^\[window\]", "[window")
    r = proj.cli("run", now=SEND_AT)
    assert r.exit_code == 2
    assert str(proj.project.config_path) in r.output and "line" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert smtp_server.client_mail == []


@pytest.mark.parametrize("old,new,field", [
    (r'^client = "Northwind Traders"', 'client = "Northwind\\r\\nBcc: evil@x.example"',
     "client"),
    (r'name = "María José Álvarez"', 'name = "Mj\\nBcc: evil@x.example"', "contacts.to[0].name"),
    (r'"mj\.alvarez@northwind\.example"', '"mj.alvarez@northwind"', "contacts.to[0].email"),
    (r'"tom\.becker@northwind\.example"', '"tom becker@northwind.example"',
     "contacts.cc[0].email"),
    (r'^email = "dana@whitfield-consulting\.example"',
     'email = "dana@whitfield.example\\r\\nBcc: x@y.example"', "consultant.email"),
    (r'^name = "Dana Whitfield"', 'name = "Dana\\rWhitfield"', "consultant.name"),
])
def test_header_values_with_line_breaks_or_bad_addresses_are_refused_by_field(
        proj, smtp_server, old, new, field):
    # (re.sub reads backslashes in the replacement: keep the TOML escapes literal)
    path = proj.write_engagement("bad", proj.example(**{old: new.replace("\\", "\\\\")}))
    r = proj.cli("engagement", "add", str(path))
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert "\n" not in line
    assert str(path) in line and f": {field}: " in line, line
    assert "evil@x.example" not in line or "line breaks" in line
    assert told_only(proj.cli("run", now=SEND_AT))
    assert smtp_server.client_mail == []


def test_a_typo_in_an_engagement_file_is_named(proj):
    path = proj.write_engagement("typo", proj.example(**{r"^\[contacts\]": "[contacts]\nccs = []"}))
    r = proj.cli("engagement", "add", str(path))
    assert r.exit_code == 2
    assert f"{path}: contacts.ccs: unknown key (did you mean 'cc'?)" in r.output


def test_a_sender_name_with_a_line_break_is_refused_at_config_load(proj):
    proj.set_config(r'^name = "Dana Whitfield"', r'name = "Dana\\nBcc: x@y.example"')
    r = proj.cli("status")
    assert r.exit_code == 2
    assert f"{proj.project.config_path}: sender.name: must not contain line breaks" in r.output


def test_config_errors_are_config_errors():
    assert issubclass(ConfigError, MailflowError) and ConfigError.exit_code == 2
