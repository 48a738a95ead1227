"""Files and commands that are not what they seem: template symlinks leading out of the project,
deeply nested TOML, a secret command that fails loudly, and `engagement add --replace` changing
an approved draft."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailflow.config.tomlfile import MAX_DEPTH, read_toml
from mailflow.desk.actions import apply_edit
from mailflow.errors import ConfigError
from mailflow.store import Store
from tests.helpers import DRAFTED, KEY, add, load, make_project

OUTSIDE_SECRET = "contents of a file outside the project"


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


def _outside(tmp_path):
    target = tmp_path / "elsewhere" / "notes.txt"
    target.parent.mkdir()
    target.write_text(OUTSIDE_SECRET + " {{ client }}\n")
    return target


def test_a_template_symlinked_outside_the_project_is_refused(project, tmp_path):
    body = project.root / "templates" / "emails" / "en" / "timeline_notice" / "body.txt"
    body.unlink()
    body.symlink_to(_outside(tmp_path))
    check = project.cli("check")
    assert check.exit_code == 2
    assert "refused" in check.output and "outside" in check.output
    assert OUTSIDE_SECRET not in check.output
    add(project)
    r = project.cli("run", now=DRAFTED)
    assert r.exit_code == 7 and "timeline_notice/body.txt: refused" in r.output  # not rendered
    msg = load(project).messages[KEY]
    assert msg["state"] == "blocked" and not msg.get("body")


def test_an_included_file_symlinked_outside_is_refused_and_one_inside_is_read(project,
                                                                              tmp_path):
    emails = project.root / "templates" / "emails"
    (emails / "_signature.txt").rename(emails / "_signature_real.txt")
    (emails / "_signature.txt").symlink_to(emails / "_signature_real.txt")  # inside: fine
    assert project.cli("check").exit_code == 0
    (emails / "_signature.txt").unlink()
    (emails / "_signature.txt").symlink_to(_outside(tmp_path))
    check = project.cli("check")
    assert check.exit_code == 2 and "_signature.txt: refused" in check.output
    assert OUTSIDE_SECRET not in check.output


def test_a_symlinked_stage_folder_outside_the_project_is_refused(project, tmp_path):
    emails = project.root / "templates" / "emails"
    outside = tmp_path / "other-client"
    (emails / "en" / "support_offer").rename(outside)
    (emails / "en" / "support_offer").symlink_to(outside, target_is_directory=True)
    check = project.cli("check")
    assert check.exit_code == 2 and "support_offer/" in check.output
    assert "refused" in check.output


@pytest.mark.parametrize("nesting", [
    "data = { x = " + "[" * 600 + "]" * 600 + " }",
    "data = { x = " + "{ a = " * 600 + "1" + " }" * 600 + " }",
    "[data]\n" + "a." * 2000 + "a = 1",
    "[data]\nx = " + "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2),
])
def test_deeply_nested_toml_is_one_line_naming_the_file_exit_2(project, nesting):
    text = project.example()
    # a top-level key goes before the first table; a [data] table at the end
    text = text + "\n" + nesting + "\n" if nesting.startswith("[") else nesting + "\n" + text
    path = project.write_engagement("deep", text)
    r = project.cli("engagement", "add", str(path))
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "nested" in lines[0]
    assert "Traceback" not in r.output and len(lines[0]) < 300


def test_deeply_nested_mailflow_toml_stops_every_command_with_exit_2(project):
    config = project.project.config_path
    config.write_text(config.read_text() + "\nx = " + "[" * 2000 + "]" * 2000 + "\n")
    for args in (("status",), ("run",)):
        r = project.cli(*args)
        assert r.exit_code == 2, (args, r.output)
        assert str(config) in r.output and len(r.output.strip().splitlines()) == 1
    r = project.cli("check")  # lists every problem, then counts them
    assert r.exit_code == 2
    (problem,) = [ln for ln in r.output.splitlines() if ln.startswith("problem:")]
    assert str(config) in problem and "nested" in problem


def test_moderate_nesting_in_free_data_is_kept(project):
    path = project.write_engagement("ok", project.example() + "\n[data]\nx = [[[[1]]]]\n")
    assert project.cli("engagement", "add", str(path)).exit_code == 0


@settings(max_examples=int(os.environ.get("MAILFLOW_FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(shape=st.lists(st.sampled_from(["[", "{ k = ", "a."]), min_size=1, max_size=3000))
def test_any_nesting_is_read_or_refused_as_a_config_error(tmp_path, shape):
    """Arrays, inline tables and dotted keys mixed to any depth: data, or one ConfigError."""
    opening, closing, dotted = "", "", ""
    for part in shape:
        if part == "a.":
            if not opening:
                dotted += part
                continue
            part = "{ " + part[:-1] + " = "
            closing = " }" + closing
        elif part == "[":
            closing = "]" + closing
        else:
            closing = " }" + closing
        opening += part
    path = tmp_path / "fuzz.toml"
    path.write_text(f"{dotted}x = {opening}1{closing}\n")
    try:
        data = read_toml(path)
    except ConfigError as err:
        assert str(path) in str(err) and "\n" not in str(err)
    else:
        json.dumps(data)  # whatever is read can be stored


def test_a_failing_password_command_never_has_its_output_forwarded(project, tmp_path):
    secret = "hunter2-the-imap-password"
    command = tmp_path / "vault-get"
    command.write_text(f"#!/bin/sh\necho '{secret}'\necho 'vault: wrong key for {secret}' >&2\n"
                       "exit 3\n")
    command.chmod(command.stat().st_mode | stat.S_IXUSR)
    config = project.project.config_path
    config.write_text(config.read_text() + f"""
[imap]
host = "127.0.0.1"
port = 9
security = "none"
username = "dana"
password_command = "{command}"
""")
    r = project.cli("poll")
    assert r.exit_code != 0, r.output
    assert secret not in r.output and "vault" not in r.output.replace(str(command), "")
    (line,) = r.output.strip().splitlines()
    assert "password_command" in line and "failed (exited 3)" in line
    assert "not shown" in line
    assert not any(secret.encode() in f.read_bytes()
                   for f in (project.root / ".mailflow").rglob("*") if f.is_file())


def _approved(project) -> None:
    add(project)
    project.cli("run", now=DRAFTED)  # drafts it (and says it needs you)
    assert project.cli("drafts", "approve", KEY, now=DRAFTED).exit_code == 0
    assert load(project).messages[KEY]["state"] == "approved"


def _replace(project, **changes):
    path = project.write_engagement("example", project.example(**changes))
    return project.cli("engagement", "add", "--replace", str(path), now=DRAFTED)


def test_replacing_with_a_new_to_address_withdraws_the_approval_and_says_so(project):
    _approved(project)
    r = _replace(project, **{r"mj\.alvarez@northwind\.example": "mj@northwind-new.example"})
    assert r.exit_code == 0, r.output
    assert f"{KEY}: approval withdrawn: the recipients changed" in r.output
    msg = load(project).messages[KEY]
    assert msg["state"] == "awaiting_approval"
    assert [p["email"] for p in msg["to"]] == ["mj@northwind-new.example"]


def test_replacing_with_a_new_client_name_withdraws_it_for_the_subject_and_body(project):
    _approved(project)
    r = _replace(project, **{r'^client = "Northwind Traders"': 'client = "Northwind Ltd"'})
    assert r.exit_code == 0, r.output
    assert "approval withdrawn: the subject and body changed" in r.output or \
        "approval withdrawn: the body changed" in r.output
    assert load(project).messages[KEY]["state"] == "awaiting_approval"


def test_replacing_with_nothing_that_reaches_the_draft_keeps_the_approval(project):
    _approved(project)
    r = _replace(project, **{r"^notes = .*$": 'notes = "internal: call Tom first"'}) \
        if 'notes = ' in project.example() else _replace(
            project, **{r"^\[links\]": '[links]\n# a comment only'})
    assert r.exit_code == 0 and "withdrawn" not in r.output
    assert load(project).messages[KEY]["state"] == "approved"


def test_an_edited_approved_draft_follows_new_recipients_and_loses_its_approval(project):
    _approved(project)
    with Store(project.project.state_dir).writer() as w:
        msg = w.state.messages[KEY]
        apply_edit(w, msg, "My own subject", "<p>mine</p>", "mine", "dana",
                   dt.datetime(2026, 12, 28, 15, tzinfo=dt.UTC))
        w.update_message(msg, "message.approved", at=dt.datetime(2026, 12, 28, 15, tzinfo=dt.UTC),
                         state="approved", approved_by="dana")
        w.save()
    r = _replace(project, **{r"tom\.becker@northwind\.example": "it@northwind.example"})
    assert "approval withdrawn: the recipients changed" in r.output
    msg = load(project).messages[KEY]
    assert msg["subject"] == "My own subject" and msg["state"] == "awaiting_approval"
    assert [p["email"] for p in msg["cc"]] == ["it@northwind.example"]


@pytest.mark.parametrize("value", ['"mx example.com"', '"mx.example.com; dkim=pass"',
                                   "true"])
def test_a_bad_authserv_id_is_named(project, value):
    config = project.project.config_path
    config.write_text(config.read_text() + f"""
[imap]
host = "imap.example.com"
security = "tls"
authserv_id = {value}
""")
    r = project.cli("status")
    assert r.exit_code == 2 and f"{config}: imap.authserv_id: " in r.output
