"""The suite compiles each template once (tests/helpers.compile_templates_once): what a
template runs must be exactly what a fresh Jinja2 compile of its own file gives."""

from __future__ import annotations

import os
from types import CodeType

import jinja2
import pytest

from mailflow.errors import RenderError
from mailflow.render.templates import Renderer
from tests.helpers import make_project

pytestmark = pytest.mark.skipif(os.environ.get("MAILFLOW_TEST_COMPILE") == "fresh",
                                reason="MAILFLOW_TEST_COMPILE=fresh: every compile is fresh")


def files(code: CodeType) -> set[str]:
    """The file names in a code object and every one nested in it."""
    return {code.co_filename}.union(*(files(c) for c in code.co_consts
                                      if isinstance(c, CodeType)))


def test_every_playbook_template_runs_the_code_a_fresh_compile_of_its_own_file_gives(tmp_path):
    fresh = jinja2.Environment.compile.fresh
    first, second = (make_project(tmp_path / name).project for name in ("a", "b"))
    names = [p.relative_to(second.templates_dir).as_posix()
             for p in sorted(second.templates_dir.rglob("*")) if p.is_file()]
    assert len(names) > 20
    for project in (first, second):  # the second project is served from the first's compile
        env = Renderer(project.templates_dir).env
        for name in names:
            source, filename, _ = env.loader.get_source(env, name)
            got = env.compile(source, name, filename)
            if project is second:
                want = fresh(env, source, name, filename)
                # code objects compare by what they run; the file names apart, in every one
                assert got == want and files(got) == files(want) == {filename}, name


def test_settings_that_change_the_code_are_compiled_apart():
    source = "{% if x %}\n  {{ x|upper }}\n{% endif %}\n"
    plain = jinja2.Environment().from_string(source).render(x="a<")
    trimmed = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(source)
    escaped = jinja2.Environment(autoescape=True).from_string(source)
    assert (plain, trimmed.render(x="a<"), escaped.render(x="a<")) == \
        ("\n  A<\n", "  A<\n", "\n  A&lt;\n")
    other = jinja2.Environment()
    other.filters["upper"] = str.lower  # the same name, another function
    assert other.from_string(source).render(x="A") == "\n  a\n"


def test_an_error_in_a_template_names_its_own_project_each_time(tmp_path):
    for name in ("a", "b"):
        project = make_project(tmp_path / name).project
        (project.templates_dir / "broken").mkdir()
        for file in ("subject.txt", "body.html"):
            (project.templates_dir / "broken" / file).write_text("Hello\n")
        (project.templates_dir / "broken" / "body.txt").write_text("{{ 1 / zero }}\n")
        with pytest.raises(RenderError) as err:
            Renderer(project.templates_dir).render("broken", {"zero": 0})
        assert "broken/body.txt" in str(err.value)
        (project.templates_dir / "broken" / "body.txt").write_text("{% if %}\n")
        with pytest.raises(RenderError, match="syntax error in broken/body.txt, line 1"):
            Renderer(project.templates_dir).render("broken", {})
