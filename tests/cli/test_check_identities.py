"""`mailflow check` and identities (issue 15): every lead has one, and From matches the
signature; a run never sends a lead's mail as someone else."""

from __future__ import annotations

from tests.helpers import DRAFT_AT, make_project

LEE = """
[[identity]]
name = "Lee Park"
email = "lee@parkassoc.example"

[identity.smtp]
host = "127.0.0.1"
port = 2525
security = "none"
"""
DANA_FILE = "engagements/example.toml"


def lee_engagement(proj, name: str = "Lee Park") -> str:  # noqa: ANN001
    text = proj.example(**{
        r'^id = "northwind-2026"': 'id = "lee-2026"',
        r'^name = "Dana Whitfield"': f'name = "{name}"',
        r'^email = "dana@whitfield-consulting.example"': 'email = "lee@parkassoc.example"'})
    return str(proj.write_engagement("lee", text))


def with_lee(tmp_path):  # noqa: ANN001, ANN201
    proj = make_project(tmp_path)
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text() + LEE)
    return proj


def test_check_passes_when_every_lead_has_an_identity_that_matches_the_signature(tmp_path):
    proj = with_lee(tmp_path)
    lee_engagement(proj)
    r = proj.cli("check")
    assert r.exit_code == 0, r.output


def test_check_fails_when_a_lead_has_no_identity(tmp_path):
    proj = with_lee(tmp_path)
    path = proj.write_engagement("lee", proj.example(**{
        r'^id = "northwind-2026"': 'id = "kim-2026"',
        r'^name = "Dana Whitfield"': 'name = "Kim Osei"',
        r'^email = "dana@whitfield-consulting.example"': 'email = "kim@osei.example"'}))
    r = proj.cli("check")
    assert r.exit_code == 2, r.output
    lines = [line for line in r.stderr.splitlines() if "kim@osei.example" in line]
    assert len(lines) == 1, r.stderr
    assert lines[0].endswith(f"{path}: consultant.email kim@osei.example has no [[identity]] "
                             f"in {proj.project.config_path} (have: "
                             "dana@whitfield-consulting.example, lee@parkassoc.example)")


def test_check_fails_when_from_and_the_signature_would_differ(tmp_path):
    # the one-identity form: the lead signs, but the mail would go out From the [sender]
    proj = make_project(tmp_path)
    lee = lee_engagement(proj)
    r = proj.cli("check")
    assert r.exit_code == 2, r.output
    assert (f"{lee}: consultant: the emails are signed Lee Park <lee@parkassoc.example> but go "
            "out From Dana Whitfield <dana@whitfield-consulting.example>") in r.stderr
    assert "[sender]" in r.stderr and DANA_FILE not in r.stderr
    # with identities: the same address, but another name in the From line
    proj = with_lee(tmp_path / "two")
    lee = lee_engagement(proj, name="Lee Park-Okafor")
    r = proj.cli("check")
    assert r.exit_code == 2, r.output
    assert (f"{lee}: consultant: the emails are signed Lee Park-Okafor <lee@parkassoc.example> "
            "but go out From Lee Park <lee@parkassoc.example>") in r.stderr
    assert "the [[identity]] of lee@parkassoc.example" in r.stderr


def test_a_run_blocks_a_lead_s_mail_without_an_identity_and_drafts_the_others(tmp_path):
    proj = with_lee(tmp_path)
    path = proj.write_engagement("kim", proj.example(**{
        r'^id = "northwind-2026"': 'id = "kim-2026"',
        r'^email = "dana@whitfield-consulting.example"': 'email = "kim@osei.example"'}))
    r = proj.cli("engagement", "add", str(proj.root / DANA_FILE), str(path), now=DRAFT_AT)
    assert r.exit_code == 0, r.output
    r = proj.cli("run", now=DRAFT_AT)
    assert r.exit_code == 2, r.output
    assert ("engagement kim-2026: kim-2026/timeline_notice/0: consultant.email kim@osei.example "
            "has no [[identity]]") in r.stderr
    r = proj.cli("drafts", now=DRAFT_AT)
    assert "northwind-2026/timeline_notice" in r.output
