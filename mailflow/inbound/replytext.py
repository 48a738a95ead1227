"""The new text of a reply: quoted history and signatures removed, conservatively.

Above the first reply header is the sender's text; below it, when the earlier message is
'>'-quoted, unquoted lines between and after the quotes are the sender's answers too (inline and
bottom posting). When the earlier message is not quoted, everything below its header is history.
"""

from __future__ import annotations

import re

from mailflow.inbound.quoteheaders import (
    attribution_span,
    clean_line,
    could_start_history,
    dated_address_line,
    header_block_span,
    is_quoted,
    is_separator,
    split_inline_attribution,
)

_RULE = re.compile(r"^[_\-=]{10,}\s*$")
# The line a mobile or webmail program appends below what its user typed; whatever follows it
# is that program's copy of the earlier message.
_SENT_FROM = re.compile(
    r"""^(?:
        (?:sent|envoyé|gesendet|enviado|enviada|inviato|verzonden|skickat|sendt|lähetetty
          |wysłano|odesláno|отправлено)\s+
        (?:from|with|using|via|de|depuis|à\s+partir\s+de|von|mit|desde|da|dal|dal\s+mio|vanaf
          |met|från|fra|z|ze|из|с|с\s+моего)\s+[^\s:][^:]{0,50}(?<![.!?])
      | sent\s+(?:from|with)\s+\S.{0,80}(?:brevity|typos|autocorrect)[\s.!]*
      | get\s+outlook\s+for\s+\S.{0,60}
      | (?:von|vom)\s+meinem\s+\S.{0,40}\s+gesendet
      | télécharger\s+outlook\s+pour\s+\S.{0,40}
      | scarica\s+outlook\s+per\s+\S.{0,40}
      | obtener\s+outlook\s+para\s+\S.{0,40}
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_LIST_FOOTER = re.compile(r"^_{2,}$")
_LINK_TAIL = re.compile(r"\s*<(?:https?|mailto):[^>]*>\s*$")
# Sign-offs that end a message; "Thanks," is left alone because it is often the message itself.
_SIGN_OFF = re.compile(
    r"""^(?:
        (?:best|kind|warm|many\s+thanks\s+and)?\s*regards | best(?:\s+wishes)? | cheers
      | cordialement | bien\s+(?:à\s+vous|cordialement) | salutations(?:\s+distinguées)?
      | (?:mit\s+)?(?:freundlichen|besten|vielen|viele|liebe)\s+grüßen? | beste\s+grüße | mfg
      | (?:un\s+)?saludos?(?:\s+cordiales)? | atentamente | un\s+abrazo
    )\s*[,.!]?$""",
    re.IGNORECASE | re.VERBOSE,
)
_MAX_SIGNATURE_LINES = 5  # name, title, company, phone, site: more than that is likely prose


def _history_start(lines: list[str]) -> tuple[int, int]:
    """Index where earlier messages start (len(lines) if none) and the length of their header."""
    for i, line in enumerate(lines):
        if is_quoted(line) or not line.strip() or not could_start_history(line):
            continue
        span = attribution_span(lines, i) or header_block_span(lines, i)
        if span:
            return i, span
        if is_separator(line):
            return i, 1
        if _RULE.match(line.strip()):
            nxt = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
            if nxt is not None and header_block_span(lines, nxt, ruled=True):
                return i, 1
        if dated_address_line(line) and _quote_follows(lines, i + 1):
            return i, 1  # "2011/4/7 Name <x@y>" with no colon, then the quote (talon)
    return len(lines), 0


def _quote_follows(lines: list[str], i: int) -> bool:
    nxt = next((line for line in lines[i:] if line.strip()), None)
    return nxt is not None and is_quoted(nxt)


def _own_lines(lines: list[str]) -> list[str]:
    """Unquoted lines, without a quote's wrapped continuation lines ('> a long\nline\n> b')."""
    kept = []
    for i, line in enumerate(lines):
        if is_quoted(line):
            continue
        between = 0 < i < len(lines) - 1 and is_quoted(lines[i - 1]) and is_quoted(lines[i + 1])
        if line.strip() and between and _continues(lines[i - 1], line):
            continue
        kept.append(line)
    return kept


def _continues(quoted: str, line: str) -> bool:
    """True when line is the rest of the quoted line above, wrapped without its '>'."""
    first = line.strip()[:1]
    return not first.isupper() or not quoted.rstrip().endswith((".", "?", "!", ":", ";", ")"))


def _answers_below(lines: list[str]) -> list[str]:
    """The sender's answers after a '>'-quoted message: between the quotes and after them."""
    if not _quote_follows(lines, 0):
        return []  # the earlier message is not quoted: all of it is history
    start, _ = _history_start(lines)
    return _own_lines(lines[:start])


def _split_shared_lines(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        shared = split_inline_attribution(line)
        out.extend(shared if shared else (line,))
    return out


def _trim_rules(lines: list[str]) -> list[str]:
    """Lines without the trailing rules and blanks a mail program puts above the history."""
    end = len(lines)
    while end and not re.search(r"\w", lines[end - 1]):
        end -= 1
    return lines[:end]


def _strip_signature(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        stripped = line.rstrip()
        if stripped in ("-- ", "--", "__") or line == "-- ":
            return lines[:i]
        if _LIST_FOOTER.match(stripped) and i + 1 < len(lines) and "mailing list" in lines[i + 1]:
            return lines[:i]  # Mailman's footer, added by the list below every message
        if _SENT_FROM.match(_LINK_TAIL.sub("", stripped.strip())):
            return lines[:i]
    content = [i for i, line in enumerate(lines) if line.strip()]
    for pos, i in enumerate(content):
        if pos == 0 or not _SIGN_OFF.match(lines[i].strip()):
            continue
        tail = [lines[j].strip() for j in content[pos + 1 :]]
        # Only a short block of short, sentence-free lines counts as name/title/contact details.
        if len(tail) <= _MAX_SIGNATURE_LINES and all(
            len(t) <= 60 and not re.search(r"[.!?]\s+\w", t) for t in tail
        ):
            return lines[:i]
    return lines


def _clean(lines: list[str]) -> str:
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def extract_reply(text: str) -> str:
    """The text the sender wrote in this message, without quoted history or signature."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [clean_line(line) for line in text.split("\n")]
    lines = _split_shared_lines(lines)
    start, span = _history_start(lines)
    top = _clean(_trim_rules(_strip_signature(_own_lines(lines[:start]))))
    below = _clean(_strip_signature(_answers_below(lines[start + span :])))
    return "\n\n".join(part for part in (top, below) if part)
