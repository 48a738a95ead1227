"""Sender identities (issue 15): loading [[identity]], picking an engagement's, and each
identity's own throttle in due selection."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailflow.config.loading import Loaded
from mailflow.config.settings import load_config
from mailflow.engine import sending
from mailflow.errors import ConfigError

BASE = """
time_zone = "America/New_York"
"""
SENDER = """
[sender]
name = "Dana Whitfield"
email = "dana@whitfield.example"

[smtp]
host = "127.0.0.1"
port = 1025
security = "none"
"""
LEE = """
[[identity]]
name = "Lee Park"
email = "Lee@Park.example"
per_minute = 3

[identity.smtp]
host = "127.0.0.1"
port = 2025
security = "none"

[identity.imap]
host = "127.0.0.1"
port = 2143
security = "none"
"""


def config(tmp_path: Path, text: str):  # noqa: ANN201
    path = tmp_path / "mailflow.toml"
    path.write_text(BASE + text)
    return load_config(path)


def loaded(cfg) -> Loaded:  # noqa: ANN001
    return Loaded(None, cfg, {}, None)  # identity_for needs only the config


def eng(email: str) -> dict:
    return {"id": "e1", "consultant": {"name": "X", "email": email}}


def test_the_single_sender_form_is_the_one_identity_every_engagement_goes_out_as(tmp_path):
    cfg = config(tmp_path, SENDER)
    assert [i.email for i in cfg.identities] == ["dana@whitfield.example"]
    assert not cfg.explicit_identities
    only = cfg.identities[0]
    assert only.smtp == cfg.smtp and only.key == "" and only.cursor_key("INBOX") == "INBOX"
    # whoever leads, the one identity sends (check says when the signature differs)
    assert loaded(cfg).identity_for(eng("someone@else.example")) is only


def test_an_identity_beside_the_sender_has_its_own_account_throttle_and_cursors(tmp_path):
    cfg = config(tmp_path, SENDER + LEE)
    dana, lee = cfg.identities
    assert cfg.explicit_identities and cfg.smtp.port == 1025  # the project's own account
    assert lee.smtp.port == 2025 and lee.imap.port == 2143 and lee.per_minute == 3
    assert lee.per_day is None  # the [schedule] limit
    assert lee.cursor_key("INBOX") == "lee@park.example:INBOX"
    assert loaded(cfg).identity_for(eng("lee@park.EXAMPLE")) is lee
    assert loaded(cfg).identity_for(eng("dana@whitfield.example")) is dana
    with pytest.raises(ConfigError, match=r"engagement e1: consultant.email nobody@x.example "
                                          r"has no \[\[identity\]\].*have: dana@whitfield"):
        loaded(cfg).identity_for(eng("nobody@x.example"))


def test_identities_alone_make_the_first_one_the_sender(tmp_path):
    cfg = config(tmp_path, LEE)
    assert cfg.sender.email == "Lee@Park.example" and cfg.smtp.port == 2025
    assert cfg.identities[0].key == ""  # the sender's cursors keep their bare names


def test_a_message_keeps_the_identity_it_was_drafted_as(tmp_path):
    cfg = config(tmp_path, SENDER + LEE)
    msg = {"key": "e1/s/0", "sender_email": "lee@park.example"}
    assert loaded(cfg).identity_of(msg, eng("dana@whitfield.example")).name == "Lee Park"
    with pytest.raises(ConfigError, match="e1/s/0: drafted to go out as gone@x.example"):
        loaded(cfg).identity_of({"key": "e1/s/0", "sender_email": "gone@x.example"}, {})


@pytest.mark.parametrize(("extra", "error"), [
    (LEE + LEE, r"identity\[1\].email: Lee@Park.example has an \[\[identity\]\] already"),
    (LEE.replace("per_minute = 3", "per_minute = -1"), r"identity\[0\].per_minute: expected"),
    (LEE.replace("per_minute = 3", "per_minuet = 3"), "did you mean 'per_minute'"),
    (LEE.replace("[identity.imap]", "[identity.imap]\npassword = \"x\""),
     r"identity\[0\].imap.password: secrets are never read"),
    (LEE.replace("Lee@Park.example", "dana@whitfield.example"),
     r"smtp: dana@whitfield.example has an \[\[identity\]\] with its own servers"),
])
def test_bad_identities_name_the_file_and_key(tmp_path, extra, error):
    with pytest.raises(ConfigError, match=error):
        config(tmp_path, SENDER + extra)


NOW = dt.datetime(2026, 12, 30, 15, 0, tzinfo=dt.UTC)


def test_each_identity_is_throttled_on_its_own():
    due = (NOW - dt.timedelta(hours=1)).isoformat()
    messages = {f"{e}/s/{i}": {"key": f"{e}/s/{i}", "engagement": e, "state": "approved",
                               "due": due, "step": 0} for e in ("a", "b") for i in range(3)}
    engagements = {"a": {"status": "active"}, "b": {"status": "active"}}
    picked = sending.select_due(messages, engagements, NOW, {"a@x": 1, "b@x": 2},
                                lambda m, e: NOW, group_of=lambda m: f"{m['engagement']}@x")
    assert [m["key"] for m in picked.due] == ["a/s/0", "b/s/0", "b/s/1"]
    assert picked.over_limit == 3 and picked.taken == {"a@x": 1, "b@x": 2}


def test_the_readme_s_identity_example_loads(tmp_path):
    import re
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Sender identities", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)[1]
    cfg = config(tmp_path, SENDER + block)
    lee = cfg.identities[1]
    assert (lee.email, lee.per_minute, lee.per_day) == ("lee@parkassoc.example", 10, 200)
    assert lee.smtp.port == 587 and lee.imap.port == 993 and lee.reply_to_token
