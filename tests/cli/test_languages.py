"""The client's language and conventions from the CLI: `init --language`, an engagement's
`locale`, `mailflow check` rendering every stage in every language used, and what goes out."""

from __future__ import annotations

import email
import email.policy
import shutil

import pytest
from click.testing import CliRunner

from mailflow.cli import cli
from mailflow.config.settings import load_config
from tests.helpers import is_to_consultant, make_project


def test_init_language_sets_the_project_default(tmp_path):
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "fr"), "--language", "fr",
                                 "--time-zone", "Europe/Paris"])
    assert r.exit_code == 0, r.output
    assert load_config(tmp_path / "fr" / "mailflow.toml").locale == "fr_FR"
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "ca"), "--locale", "fr-ca"])
    assert r.exit_code == 0, r.output
    assert load_config(tmp_path / "ca" / "mailflow.toml").locale == "fr_CA"
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "en"), "--name", "Dana"])
    assert load_config(tmp_path / "en" / "mailflow.toml").locale == "en_US"


def test_init_refuses_a_locale_of_another_language(tmp_path):
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "x"), "--language", "de",
                                 "--locale", "fr_FR"])
    assert r.exit_code == 64  # a bad init value is a usage error, as --time-zone's is
    assert "--locale fr_FR is not in --language de" in r.output
    assert not (tmp_path / "x" / "mailflow.toml").exists()


def test_a_french_project_checks_and_drafts_in_french(tmp_path):
    proj = make_project(tmp_path)
    proj.set_config(r'^locale = "en_US"', 'locale = "fr_FR"')
    r = proj.cli("check")
    assert r.exit_code == 0, r.output
    assert proj.cli("engagement", "add", str(proj.root / "engagements/example.toml")
                    ).exit_code == 0
    assert proj.cli("run", now="2026-12-28T15:00").exit_code in (0, 1)
    shown = proj.cli("drafts", "show", "northwind-2026/timeline_notice", now="2026-12-28T15:00")
    assert shown.exit_code == 0, shown.output
    assert "Fin de notre mission le 29 janvier" in shown.output
    assert "vendredi 29 janvier 2027" in shown.output


def test_an_engagement_locale_overrides_the_project(tmp_path):
    proj = make_project(tmp_path)
    proj.write_engagement("example", proj.example(
        **{r'^time_zone = .*': 'time_zone = "Europe/Berlin"\nlocale = "de_DE"'}))
    assert proj.cli("check").exit_code == 0
    assert proj.cli("engagement", "add", str(proj.root / "engagements/example.toml")
                    ).exit_code == 0
    assert proj.cli("run", now="2026-12-28T15:00").exit_code in (0, 1)
    shown = proj.cli("drafts", "show", "northwind-2026/timeline_notice", now="2026-12-28T15:00")
    assert "Abschluss zum 29. Januar" in shown.output
    assert "14.250,00" in shown.output


def test_a_bad_locale_is_one_line_naming_file_and_key(tmp_path):
    proj = make_project(tmp_path)
    path = proj.write_engagement("example", proj.example(
        **{r'^time_zone = .*': 'time_zone = "Europe/Berlin"\nlocale = "xx_QQ"'}))
    r = proj.cli("engagement", "add", str(path))
    assert r.exit_code == 2
    assert f"{path}: locale: unknown locale 'xx_QQ'" in r.stderr
    assert "Traceback" not in r.output + r.stderr
    proj.write_engagement("example", proj.example())
    proj.set_config(r'^locale = "en_US"', 'locale = "english"')
    r = proj.cli("check")
    assert r.exit_code == 2
    assert "mailflow.toml: locale: " in r.stderr


def test_check_names_a_language_without_templates(tmp_path):
    proj = make_project(tmp_path)
    shutil.rmtree(proj.root / "templates" / "emails" / "es")
    proj.write_engagement("example", proj.example(
        **{r'^time_zone = .*': 'time_zone = "Europe/Madrid"\nlocale = "es_ES"'}))
    r = proj.cli("check")
    assert r.exit_code == 2
    assert "no templates in language 'es'" in r.stderr
    assert "stage timeline_notice" in r.stderr


@pytest.mark.servers
def test_sent_email_has_76_character_lines_and_the_french_subject(tmp_path):
    from mailflow.transport.sink import Sink, free_port
    from tests.smtp_server import RecordingHandler

    handler = RecordingHandler()
    sink = Sink(handler, "127.0.0.1", free_port())
    sink.start()
    try:
        proj = make_project(tmp_path, smtp_port=sink.port)
        proj.set_config(r'^locale = "en_US"', 'locale = "fr_FR"')
        proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"))
        proj.cli("run", now="2026-12-28T15:00")
        assert proj.cli("drafts", "approve", "northwind-2026/timeline_notice",
                        now="2026-12-28T15:00").exit_code == 0
        proj.cli("run", now="2026-12-30T15:00")
    finally:
        sink.stop()
    [got] = [r for r in handler.received if not is_to_consultant(r.raw)]  # not the digest
    body = got.raw.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.replace(b"\r\n", b"\n").split(b"\n")) <= 76
    msg = email.message_from_bytes(got.raw, policy=email.policy.default)
    assert msg["Subject"].startswith("Fin de notre mission le 29 janvier")
    assert "vendredi 29 janvier 2027" in msg.get_body(("plain",)).get_content()
