"""Fixtures shared by the whole suite, and the tiers as markers.

Each test gets the marker of its folder (unit, contract, servers, cli); a test anywhere that
starts a real server (the aiosmtpd or Dovecot fixtures, or a subprocess of the entry point that
talks to one) also gets `servers`, so `python -m pytest -m "not servers"` is the fast loop.
A test that starts one otherwise (a fixture parameter, `request.getfixturevalue`, the
benchmark's own servers) says so itself: `pytest.param(..., marks=pytest.mark.servers)` or
`pytestmark`; a marker applied while the test runs is too late for `-m` to deselect it.

Each Jinja2 template is compiled once per test process (helpers.compile_templates_once; set
MAILFLOW_TEST_COMPILE=fresh to compile afresh every time, as before).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.helpers import ProjectUnderTest, compile_templates_once, make_project
from tests.smtp_server import smtp_server, smtp_server_auth  # noqa: F401

TIERS = ("unit", "contract", "servers", "cli")
SERVER_FIXTURES = {"smtp_server", "smtp_server_auth", "auth_server", "dovecot", "imap_account",
                   "proj"}


def pytest_configure(config: pytest.Config) -> None:
    for tier, what in [("unit", "pure functions: no sockets, no subprocesses"),
                       ("contract", "the declared seams, every implementation"),
                       ("servers", "real aiosmtpd and Dovecot servers on 127.0.0.1"),
                       ("cli", "CliRunner and the real entry point in a subprocess")]:
        config.addinivalue_line("markers", f"{tier}: {what}")
    config.addinivalue_line("markers", "slow: long randomised runs (deselect with -m 'not slow')")
    # A suite started as a background job of a non-interactive shell (`cmd &`, as some CI
    # runners do) inherits SIGINT ignored, and so would every mailflow it starts: the tests
    # that Ctrl-C one would wait for nothing. Interrupts are restored as a terminal has them.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    compile_templates_once()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        rel = Path(item.fspath).resolve().relative_to(here)
        if rel.parts and rel.parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, rel.parts[0]))
        if rel.parts[0] == "servers" or SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)


@pytest.fixture
def proj(tmp_path, smtp_server) -> ProjectUnderTest:  # noqa: F811
    """A project from the default playbook wired to a fresh test SMTP server."""
    return make_project(tmp_path, smtp_server.port)
