"""CSS inlining: premailer's output, with its selector matching done once per document shape.

premailer runs one XPath query per CSS rule over every message, and merges the matched rules of
every element in Python: most of the cost of rendering a draft (issue 18). Which elements a
selector picks depends only on the tree's shape and on tags, classes and ids, never on the text;
so when every selector of the stylesheet looks at nothing else, the matches found for the first
message of a shape serve every later message of that shape, and each element's merged style is
worked out once per (inline style, matched rules). The rest is premailer's own code, in its own
order. Anything outside those conditions (attribute selectors, a `media` or `data-premailer`
attribute on a `<style>`, an error) goes through premailer whole.
tests/unit/test_inline_fast.py proves the bytes identical on the playbook and awkward cases.
"""

from __future__ import annotations

import itertools
import logging
import operator
import re
from typing import Any

__all__ = ["inline_css", "premailer_inline", "shape_inline", "stats"]

# email has no use for <link>: it would be an external stylesheet that mail clients fetch (a
# tracking-style request) and premailer would otherwise try to download it
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
# selectors whose matches follow from tags, classes, ids and the tree's shape alone (premailer
# keeps every other pseudo-class in a leftover <style>, never inlining it)
_SHAPE_ONLY = re.compile(r"[A-Za-z0-9_\-\s.#>+~]+(?::first-child|:last-child|:nth-child)?")
_MAX_SHAPES = 256  # distinct (stylesheet, shape) pairs remembered (~15 KB each); then start over
_MAX_MERGES = 8192
_SERIAL = itertools.count()  # names a stylesheet in the merge memo, never reused

# how often each path ran: tests assert the fast path really serves the playbook
stats = {"full": 0, "shape_hit": 0, "shape_miss": 0}


def inline_css(html: str) -> str:
    """Inline the <style> rules into style attributes; never touches the network."""
    try:
        fast = shape_inline(html)
    except Exception:  # noqa: BLE001 - premailer below fails the way it always has
        fast = None
    return fast if fast is not None else premailer_inline(html)


def shape_inline(html: str) -> str | None:
    """The fast path alone: premailer's result through the memos, or None when it does not
    apply (the stylesheet's selectors look at more than tags, classes, ids and shape)."""
    return _inliner().fast(_LINK_TAG.sub("", html))


def premailer_inline(html: str) -> str:
    """premailer's transform, whole: the fallback, and what the fast path is proven against."""
    stats["full"] += 1
    return _inliner().premailer.transform(_LINK_TAG.sub("", html), pretty_print=False)


class _Sheet:
    """One stylesheet (the tuple of a document's <style> texts): its rules, sorted as premailer
    sorts them, their declarations, and the leftover CSS each <style> keeps."""

    def __init__(self, premailer: Any, bodies: tuple[str, ...]) -> None:
        from premailer.merge_style import csstext_to_pairs

        self.rules: list = []
        self.leftover: list = []
        for index, body in enumerate(bodies):
            rules, leftover = premailer._parse_style_rules(body, index)
            self.rules.extend(rules)
            self.leftover.append(leftover)
        self.rules.sort(key=operator.itemgetter(0))
        self.shape_only = all(_SHAPE_ONLY.fullmatch(selector) for _, selector, _ in self.rules)
        validate = not premailer.disable_validation
        self.pairs = [csstext_to_pairs(style, validate=validate) for _, _, style in self.rules]
        self.classes = [_pseudo_class(selector) for _, selector, _ in self.rules]
        self.serial = next(_SERIAL)


class _Inliner:
    """premailer, configured once, plus the memos of the fast path."""

    def __init__(self, premailer: Any) -> None:
        self.premailer = premailer
        self.sheets: dict[tuple[str, ...], _Sheet] = {}
        # (stylesheet, shape) -> [(element index, matched rule indices)], indices with a class,
        # whether an <img> is there
        self.shapes: dict[tuple, tuple[list[tuple[int, tuple[int, ...]]], list[int], bool]] = {}
        # (stylesheet, inline style, matched rules) -> (style attribute, other attributes)
        self.merges: dict[tuple, tuple[str, tuple[tuple[str, str], ...]]] = {}

    def fast(self, html: str) -> str | None:
        """premailer's transform of `html` through the memos; None when it does not apply."""
        from lxml import etree
        from premailer.premailer import _create_cssselector, get_or_create_head

        p = self.premailer
        stripped = html.strip()
        tree = etree.fromstring(stripped, etree.HTMLParser()).getroottree()
        page = tree.getroot()
        # lxml inserts a doctype if none exists: kept only when the HTML had one
        root = tree if stripped.startswith(tree.docinfo.doctype) else page
        get_or_create_head(tree)
        styles = _create_cssselector("style")(page)
        if any(s.get("media") or s.get(p.attribute_name) for s in styles):
            return None  # premailer skips or warns about these: let it
        bodies = tuple(s.text for s in styles)
        sheet = self.sheets.get(bodies)
        if sheet is None:
            if len(self.sheets) >= 64:
                self.sheets.clear()
            sheet = self.sheets[bodies] = _Sheet(p, bodies)
        if not sheet.shape_only:
            return None
        for style, leftover in zip(styles, sheet.leftover, strict=True):
            if leftover:
                style.text = p._css_rules_to_string(leftover)
            else:
                style.getparent().remove(style)
        elements = list(page.iter())
        shape = (bodies, tuple((el.tag, el.get("class"), el.get("id"), len(el))
                               for el in elements))
        found = self.shapes.get(shape)
        if found is None:
            stats["shape_miss"] += 1
            found = self._match(sheet, page, elements, _create_cssselector)
            if len(self.shapes) >= _MAX_SHAPES:
                self.shapes.clear()
            self.shapes[shape] = found
        else:
            stats["shape_hit"] += 1
        matched, with_class, has_img = found
        for index, rules in matched:
            element = elements[index]
            style, attributes = self._merged(sheet, element.get("style", ""), rules)
            if style:
                element.attrib["style"] = style
            for key, value in attributes:
                element.attrib[key] = value
        for index in with_class:
            del elements[index].attrib["class"]
        if has_img:
            _align_floating_images(page)
        return etree.tostring(root, method="html", pretty_print=False,
                              encoding="utf-8").decode("utf-8")

    def _match(self, sheet: _Sheet, page: Any, elements: list, selector_for: Any
               ) -> tuple[list[tuple[int, tuple[int, ...]]], list[int], bool]:
        """Which rules each element gets, as premailer matches them (rule order kept)."""
        position = {id(el): i for i, el in enumerate(elements)}
        got: dict[int, list[int]] = {}
        for number, (_, selector, _) in enumerate(sheet.rules):
            for item in selector_for(_selector_of(selector))(page):
                got.setdefault(position[id(item)], []).append(number)
        with_class = [i for i, el in enumerate(elements)
                      if isinstance(el.tag, str) and el.get("class") is not None]
        has_img = any(el.tag == "img" for el in elements)
        return [(i, tuple(rules)) for i, rules in got.items()], with_class, has_img

    def _merged(self, sheet: _Sheet, inline: str, rules: tuple[int, ...]
                ) -> tuple[str, tuple[tuple[str, str], ...]]:
        """premailer's merged style for these rules over this inline style, and the basic
        HTML attributes (align, bgcolor, width...) it derives from it, in its order."""
        key = (sheet.serial, inline, rules)
        found = self.merges.get(key)
        if found is None:
            from premailer.merge_style import merge_styles

            p = self.premailer
            style = merge_styles(inline, [sheet.pairs[r] for r in rules],
                                 [sheet.classes[r] for r in rules],
                                 remove_unset_properties=p.remove_unset_properties)
            recorder = _Attributes()
            p._style_to_basic_html_attributes(recorder, style, force=True)
            found = (style, tuple(recorder.attrib.items()))
            if len(self.merges) >= _MAX_MERGES:
                self.merges.clear()
            self.merges[key] = found
        return found


class _Attributes:
    """Stands in for an element to record the attributes premailer sets, in order."""

    def __init__(self) -> None:
        self.attrib: dict[str, str] = {}


def _pseudo_class(selector: str) -> str:
    """premailer's `class_` of a rule: the pseudo-class it keeps apart ("" for most)."""
    from premailer.premailer import FILTER_PSEUDOSELECTORS

    if ":" not in selector:
        return ""
    class_ = ":" + selector.split(":", 1)[1]
    return "" if class_ in FILTER_PSEUDOSELECTORS or class_.startswith(":nth-child") else class_


def _selector_of(selector: str) -> str:
    """The selector premailer queries for a rule (a kept pseudo-class cut off)."""
    return selector.split(":", 1)[0] if _pseudo_class(selector) else selector


def _align_floating_images(page: Any) -> None:
    """premailer's align="left|right" for floated images (Outlook reads that, not CSS)."""
    import cssutils

    for item in page.xpath("//img[@style]"):
        image_css = cssutils.parseStyle(item.attrib["style"])
        if image_css.float == "right":
            item.attrib["align"] = "right"
        elif image_css.float == "left":
            item.attrib["align"] = "left"


_INLINER: _Inliner | None = None


def _inliner() -> _Inliner:
    # imported here, not at module level: premailer pulls in lxml, cssutils and requests, and
    # interactive commands that never render must start fast
    global _INLINER
    if _INLINER is None:
        import cssutils
        import premailer

        # cssutils logs every vendor property (mso-*, -webkit-*) it does not know
        cssutils.log.setLevel(logging.CRITICAL)

        class CachingPremailer(premailer.Premailer):
            """Parses each distinct stylesheet once: every email of a tick shares the layout's.

            premailer re-serialises the same CSS through cssutils for every message; the
            parsed rules are only read, never changed.
            """

            _rules: dict[tuple[str, int], Any] = {}

            def _parse_style_rules(self, css_body: str, ruleset_index: int) -> Any:
                key = (css_body, ruleset_index)
                if key not in self._rules:
                    if len(self._rules) > 256:  # many distinct edited stylesheets: start over
                        self._rules.clear()
                    self._rules[key] = super()._parse_style_rules(css_body, ruleset_index)
                return self._rules[key]

        _INLINER = _Inliner(CachingPremailer(
            allow_network=False,  # never download <link> or external_styles
            allow_loading_external_files=False,
            base_url=None,  # no URL rewriting: links stay exactly as written
            keep_style_tags=False,  # leftovers (media queries, :hover) still stay in a <style>
            remove_classes=True,
            strip_important=False,
            disable_validation=True,
            cssutils_logging_level=logging.CRITICAL,
        ))
    return _INLINER
