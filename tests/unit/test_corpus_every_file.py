"""Every file of the corpora, scored or not, through the inbound parser (the audit's item 3).

`test_inbound_scores.py` scores the files with public expectations; this reads all of them,
including sisimai's 39 without a public row (`sisimai/unlisted/`, kinds by our own reading):
none may raise, every one gets a kind, and no report from a mail system is taken for a person.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mailflow.inbound import classify
from tests.helpers import parsed_file

CORPORA = Path(__file__).parents[1] / "data" / "corpora"
UNLISTED = CORPORA / "sisimai" / "unlisted"
KINDS = tomllib.loads((UNLISTED / "kinds.toml").read_text())["kind"]
EVERY = sorted(p for p in CORPORA.rglob("*.eml"))


def test_the_unlisted_set_is_complete():
    assert sorted(KINDS) == sorted(p.name for p in UNLISTED.glob("*.eml"))
    assert len(KINDS) == 39


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_unlisted_sisimai_message_gets_its_kind(name):
    parsed = parsed_file(UNLISTED / name)
    assert parsed.kind == KINDS[name], (parsed.kind, parsed.kind_reason)


def test_most_unlisted_bounces_name_their_failed_recipient():
    bounces = [n for n, kind in KINDS.items() if kind == classify.BOUNCE]
    named = [n for n in bounces if parsed_file(UNLISTED / n).bounce
             and parsed_file(UNLISTED / n).bounce.recipient]
    assert len(named) >= len(bounces) - 2, sorted(set(bounces) - set(named))


def test_every_corpus_message_parses_and_mail_systems_are_never_people():
    assert len(EVERY) > 600
    people = []
    for path in EVERY:
        parsed = parsed_file(path)
        assert parsed.kind in classify.KINDS, path
        if "sisimai" in path.parts and path.parent.name in ("bsd", "unlisted") \
                and parsed.kind in (classify.HUMAN, classify.UNSUBSCRIBE):
            people.append(path.name)
    # mailing-list notices, a forwarded bounce and an Apple opt-out, read as written by a
    # person; every other bounce-corpus file is a report of some kind
    assert len(people) <= 7, people
