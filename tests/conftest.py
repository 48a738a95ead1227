"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest

from tests.helpers import ProjectUnderTest, make_project
from tests.smtp_server import smtp_server, smtp_server_auth  # noqa: F401


@pytest.fixture
def proj(tmp_path, smtp_server) -> ProjectUnderTest:  # noqa: F811
    """A project from the default playbook wired to a fresh test SMTP server."""
    return make_project(tmp_path, smtp_server.port)
