"""HTML mail bodies to plain text, optionally dropping the quoted history mail programs mark up."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose text is never part of what a person reads.
_INVISIBLE = frozenset({"style", "script", "head", "title", "xml", "template"})
# Elements that start a new line of text.
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt",
        "fieldset", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "th",
        "thead", "tr", "ul",
    }
)
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base"})

# Markers after which everything is quoted history, as written by the main mail programs.
_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "protonmail_quote")
_QUOTE_IDS = ("divrplyfwdmsg", "appendonsend", "stopspelling", "mail-editor-reference-message")
# Outlook desktop's header block is a div with only this top border; nothing else marks it.
_OUTLOOK_BORDER = re.compile(r"border-top\s*:\s*solid\s+#(?:e1e1e1|b5c4df)", re.IGNORECASE)
# Styles that keep an element's text from the reader: text a person never saw is not what they
# wrote to us ("unsubscribe" in a display:none div must not pause an engagement).
_HIDDEN_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden|"
    r"(?:font-size|max-height)\s*:\s*0(?:\.0*)?(?:px|pt|em|rem|%)?\s*(?:!important)?\s*(?:;|$)|"
    r"opacity\s*:\s*0(?:\.0*)?\s*(?:!important)?\s*(?:;|$))",
    re.IGNORECASE)


# an inline style's text colour and background colour, to find text drawn in its own background
_COLOURS = re.compile(r"(?:^|;)\s*(color|background(?:-color)?)\s*:\s*([^;!]+)", re.IGNORECASE)


def _is_hidden(attrs: dict[str, str]) -> bool:
    """True when an element is not shown: the `hidden` attribute, a hiding inline style, or
    text in the very colour of the background the same style gives it (white on white).
    Text in a colour only the page around it might match is kept: hiding words the client
    did write (a real "stop") would cost more than reading a few they did not."""
    style = attrs.get("style", "")
    if "hidden" in attrs or _HIDDEN_STYLE.search(style):
        return True
    if "color" not in style.lower():
        return False
    colours = {name.lower().startswith("background"): _colour(value)
               for name, value in _COLOURS.findall(style)}
    return colours.get(False) is not None and colours.get(False) == colours.get(True)


_NAMED = {"white": "#ffffff", "black": "#000000"}


def _colour(value: str) -> str | None:
    """The first colour of a CSS value (a `background` shorthand has more) as '#rrggbb':
    named white and black, #rgb, #rrggbb or rgb(); None when it has none of them."""
    value = re.sub(r"\s+(?=[^(]*\))", "", value.lower())  # rgb(1, 2, 3) as one word
    for word in value.split():
        word = _NAMED.get(word, word)
        if re.fullmatch(r"#[0-9a-f]{3}", word):
            return "#" + "".join(c * 2 for c in word[1:])
        if re.fullmatch(r"#[0-9a-f]{6}", word):
            return word
        rgb = re.fullmatch(r"rgba?\((\d+),(\d+),(\d+)(?:,[\d.]+)?\)", word)
        if rgb:
            return "#" + "".join(f"{min(int(n), 255):02x}" for n in rgb.groups())
    return None


def _is_quote_start(tag: str, attrs: dict[str, str]) -> bool:
    """True when this start tag opens a mail program's quoted-history block."""
    classes = attrs.get("class", "").lower().split()
    if any(marker in classes for marker in _QUOTE_CLASSES):
        return True
    if attrs.get("id", "").lower() in _QUOTE_IDS:
        return True
    return tag == "div" and bool(_OUTLOOK_BORDER.search(attrs.get("style", "")))


def _is_cite(tag: str, attrs: dict[str, str]) -> bool:
    """Apple Mail's and Thunderbird's quote: rendered '>'-quoted, so answers below it are kept."""
    return tag == "blockquote" and attrs.get("type", "").lower() == "cite"


class _TextExtractor(HTMLParser):
    def __init__(self, drop_quotes: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.drop_quotes = drop_quotes
        self.parts: list[str] = []
        self.invisible = 0
        self.stopped = False
        self.cites: list[bool] = []  # per open blockquote: is it a cited message?
        self.hidden: list[list] = []  # per hidden element: [tag, open tags of that name in it]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.stopped:
            return
        if tag in _INVISIBLE:
            self.invisible += 1
            return
        values = {k.lower(): (v or "") for k, v in attrs}
        if self.hidden and tag == self.hidden[-1][0] and tag not in _VOID:
            self.hidden[-1][1] += 1
        elif tag not in _VOID and _is_hidden(values):
            self.hidden.append([tag, 1])
            self.invisible += 1
            return
        if self.drop_quotes and _is_quote_start(tag, values):
            # Quoted history runs to the end of the body: Outlook puts it in siblings, not children.
            self.stopped = True
            return
        if tag == "blockquote":
            self.cites.append(self.drop_quotes and _is_cite(tag, values))
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag == "p" and "msonormal" not in values.get("class", "").lower():
            self.parts.append("\n\n")
        elif tag in _BLOCK:
            self.parts.append("\n")
        elif tag == "td":
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in _INVISIBLE and not self.stopped:
            self.invisible -= 1
        elif self.hidden and self.hidden[-1][0] == tag and not self.stopped:
            self.handle_endtag(tag)  # <div style="display:none"/> hides nothing after it

    def handle_endtag(self, tag: str) -> None:
        if self.stopped:
            return
        if self.hidden and tag == self.hidden[-1][0]:
            self.hidden[-1][1] -= 1
            if not self.hidden[-1][1]:
                self.hidden.pop()
                self.invisible = max(0, self.invisible - 1)
            return
        if tag in _INVISIBLE:
            self.invisible = max(0, self.invisible - 1)
        elif tag == "p" or (tag in _BLOCK and tag != "li"):  # the next <li> starts its own line
            self.parts.append("\n")
        if tag == "blockquote" and self.cites:
            self.cites.pop()
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.stopped or self.invisible:
            return
        # HTML whitespace is not significant; the block tags above carry the line structure.
        text = re.sub(r"[ \t\r\n\f]+", " ", data.replace("\xa0", " "))
        depth = sum(self.cites)
        if depth and text.strip():
            text = "\x00" * depth + text  # quote marks, placed at line starts when joined
        self.parts.append(text)


def _quote_marks(line: str) -> str:
    """A line with its cited-quote depth as leading '>' marks (the deepest on the line)."""
    depth = max((len(m) for m in re.findall("\x00+", line)), default=0)
    text = line.replace("\x00", "").strip()
    return ("> " * depth + text).rstrip() if depth and text else text


def html_to_text(html: str, drop_quotes: bool = False) -> str:
    """Readable plain text of an HTML body; with drop_quotes, stop at the quoted history."""
    extractor = _TextExtractor(drop_quotes)
    try:
        extractor.feed(html)
        extractor.close()
    except Exception:  # noqa: BLE001 - html.parser is lenient, but never let a body crash parsing
        pass
    lines = [_quote_marks(line.strip()) for line in "".join(extractor.parts).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
