"""The new text of a reply: quoted history and signatures removed, conservatively."""

from __future__ import annotations

import re

# Attribution lines that introduce quoted history ("On <date>, <who> wrote:"), per language.
# They may be wrapped by the sender's program, so they are tried on 1 to 3 joined lines.
_ATTRIBUTION = re.compile(
    r"""^(?:
        On\s.{4,300}?\swrote\s*:
      | Le\s.{4,300}?\sa\s+écrit\s*:
      | Am\s.{4,300}?\sschrieb\s.{0,300}?:
      | .{2,200}?\sschrieb\s+am\s.{4,200}?:
      | El\s.{4,300}?\sescribió\s*:
      | Il\s.{4,300}?\sha\s+scritto\s*:
      | Op\s.{4,300}?\sschreef\s.{0,200}?:
      | \d{4}年\d{1,2}月\d{1,2}日.{0,300}?[:：]
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
# Outlook-style header blocks: a From line followed closely by a Sent/Date line.
_HEADER_FROM = re.compile(r"^\*?(?:From|De|Von|Da|Van|Från)\s?:\*?\s*\S", re.IGNORECASE)
_HEADER_SENT = re.compile(
    r"^\*?(?:Sent|Date|Envoyé|Gesendet|Datum|Enviado|Fecha|Inviato|Verzonden|Skickat)\s?:",
    re.IGNORECASE,
)
_HEADER_OTHER = re.compile(
    r"^\*?(?:To|Cc|Subject|À|A|Objet|An|Betreff|Para|Asunto|Oggetto|Aan|Onderwerp)\s?:",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"""^(?:
        -{2,}\s*(?:Original\s+Message|Message\s+d'origine|Ursprüngliche\s+Nachricht
            |Mensaje\s+original|Messaggio\s+originale|Forwarded\s+message
            |Message\s+transféré|Weitergeleitete\s+Nachricht|Mensaje\s+reenviado)\s*-{2,}
      | Begin\s+forwarded\s+message\s*:
      | Début\s+du\s+message\s+réexpédié\s*:
      | Anfang\s+der\s+weitergeleiteten\s+Nachricht\s*:
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_RULE = re.compile(r"^[_\-=]{10,}\s*$")
_SENT_FROM = re.compile(
    r"""^(?:
        Sent\s+from\s+(?:my\s+)?\S.{0,40}
      | Get\s+Outlook\s+for\s+\S.{0,60}
      | Envoyé\s+(?:de|depuis)\s+mon\s+\S.{0,40}
      | Von\s+meinem\s+\S.{0,40}\s+gesendet
      | Gesendet\s+von\s+(?:meinem\s+)?\S.{0,40}
      | Enviado\s+desde\s+(?:mi\s+)?\S.{0,40}
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
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


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _attribution_at(lines: list[str], i: int) -> int:
    """Number of lines (1-3) forming an attribution starting at line i, or 0."""
    for span in (1, 2, 3):
        if i + span > len(lines):
            break
        chunk = lines[i : i + span]
        if any(_is_quoted(line) for line in chunk[1:]):
            break
        # A wrapped attribution is one sentence split over adjacent lines, never a paragraph end.
        if span > 1 and (
            not chunk[-1].strip() or any(c.rstrip().endswith((".", "!", "?")) for c in chunk[:-1])
        ):
            break
        if _ATTRIBUTION.match(" ".join(part.strip() for part in chunk)):
            return span
    return 0


def _header_block_at(lines: list[str], i: int) -> bool:
    """True when line i starts an Outlook-style From/Sent/To/Subject block."""
    if not _HEADER_FROM.match(lines[i].strip()):
        return False
    following = [line.strip() for line in lines[i + 1 : i + 6] if line.strip()]
    return any(_HEADER_SENT.match(line) for line in following[:3]) and any(
        _HEADER_OTHER.match(line) or _HEADER_SENT.match(line) for line in following
    )


def _history_start(lines: list[str]) -> tuple[int, int]:
    """Index where quoted history starts (len(lines) if none) and the attribution's length."""
    for i, line in enumerate(lines):
        stripped = line.strip()
        span = _attribution_at(lines, i)
        if span:
            return i, span
        if _SEPARATOR.match(stripped) or _header_block_at(lines, i):
            return i, 1
        if _RULE.match(stripped) and i + 1 < len(lines):
            nxt = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
            if nxt is not None and _header_block_at(lines, nxt):
                return i, 1
    return len(lines), 0


def _interleaved(lines: list[str]) -> list[str]:
    """Unquoted lines written between quoted ones (answers inline in the quoted text)."""
    kept = [line for line in lines if not _is_quoted(line)]
    return kept if any(_is_quoted(line) for line in lines) else []


def _strip_signature(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        stripped = line.rstrip()
        if stripped in ("-- ", "--") or line == "-- ":
            return lines[:i]
        if _SENT_FROM.match(stripped.strip()):
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
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start, span = _history_start(lines)
    new = [line for line in lines[:start] if not _is_quoted(line)]
    if not _clean(new):
        # Nothing above the quote: the sender may have answered inline, below the attribution.
        new = _interleaved(lines[start + span :])
    return _clean(_strip_signature(new))
