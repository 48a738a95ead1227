"""Where earlier messages start in a reply: attributions, header blocks and separators.

Mail programs introduce the message they answer in three ways, in every language:
an attribution ("On <date>, <who> wrote:", "<date> <who> <address>:"), a header block copied
from the original (From/Sent/To/Subject, each label translated), or a separator line
("-----Original Message-----"). Each rule asks for evidence besides a keyword (a date, an
address, a frame of dashes) so that prose such as "here is what John wrote:" stays reply text.
"""

from __future__ import annotations

import re

# The verb of an attribution, per language (en, fr, de, es, it, nl, pt, ca, da/no/sv/is, fi,
# pl, cs/sk, hu, tr, el, ru/uk/sr/bg, vi, zh, ja, ko, ro, hr/sl, lt, lv, et, id/ms, th, ar, he,
# fa), and the "Quoting X:" forms of webmail (Horde, Roundcube).
_VERB = (
    r"wrote|sent|a\s+écrit|a\s+ecrit|schrieb|escribió|escribio|ha\s+scritto|scrisse|schreef"
    r"|het\s+volgende\s+geschreven|geschreven|escreveu|ha\s+escrit|va\s+escriure|skrev|skrifaði"
    r"|kirjoitti|napisał(?:a|\(a\))?|napisal(?:a|\(a\))?|pisze|napsal(?:a|\(a\))?|írta"
    r"|yazdı|έγραψε|написал(?:а|\(а\))?|писал(?:а|\(а\))?|пишет|написав|đã\s+viết"
    r"|写道|寫道|のメッセージ|書きました|作成|작성|a\s+scris|je\s+napisao|je\s+napisala"
    r"|rašė|rakstīja|kirjutas|napísal(?:a|\(a\))?|napisao|написао|написа|menulis|เขียน|كتب"
    r"|כתב(?:ה)?|نوشت|quoting|zitat\s+von|citando|citazione|cytuję"
)
# A verb near the end ("... wrote:", "... wrote ----", "... napisał(a):", "... 写道：") or a verb
# followed by the sender and a final colon ("Am ... schrieb Name <x@y>:").
_VERB_END = re.compile(
    rf"(?:^|[\s>\"')\],，、]|(?<=[\u3000-\u9fff\uac00-\ud7af]))(?:{_VERB})\s*[:：]?\s*-*\s*$", re.I
)
# ("sent" only ends an attribution: "the quote you sent on 5.1. says:" is prose)
_VERB_COLON = re.compile(
    rf"(?:^|[\s>\"')\],，、])(?!sent\b)(?:{_VERB})\b.{{0,200}}[:：]\s*-*\s*$", re.I)
# Prose written by the sender: "I wrote:", "as we wrote:" introduce their own words.
_FIRST_PERSON = re.compile(r"\b(?:I|we|je|nous|ich|wir|yo|io|ik)\s+(?:" + _VERB + r")\b", re.I)
# Bounded parts (RFC 5321 lengths): an unbounded local part is quadratic on a long word run.
_ADDRESS = re.compile(r"[\w.+'=-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}|mailto:", re.I)
# A time, a year, a numeric date, or a CJK date: the evidence an attribution carries.
# (Never inside a longer run of dotted numbers: "142.250.1.27" is an IP address, not a date.)
_DATEISH = re.compile(
    r"(?<!\d)(?<!\d\.)(?:\d{1,2}\s*[:.h]\s*\d{2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4})(?!\.?\d)"
    r"|\b(?:19|20)\d{2}\b|\d+\s*[年月日년월일]",
)
_LEADS = (
    r"On|Le|Am|El|Il|In\s+data|Op|Em|Den|På|W\s+dniu|Dnia|Dne|Στις|Vào|At|Il\s+giorno"
    r"|Le\s+\w+\s+\d"
)
_LEAD = re.compile(rf"^(?:{_LEADS})\b", re.I)
_BRACKETED_END = re.compile(r"[\w.+'=-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}\s*[>)\]]\s*[:：]$")
# a digit (date, time), an address, a colon (labels, "wrote:"), a frame or rule character, or
# a CJK date/colon; a line with none of them is prose
_MARKS = re.compile(r"[\d@:：\-_=*年月日년월일]")
_OPEN_END = re.compile(r"(?:[<(]|@[\w.-]{1,253}>?)\s*$")
_FRAME = re.compile(r"^\s*-{2,}\s*(.*?)\s*-{2,}\s*$")
_MAX_ATTRIBUTION = 400

# Header blocks: a label per field and language, "Label: value" at the start of a line.
_LABELS = {
    "from": r"from|de|von|da|van|fra|från|od|от|lähettäjä|feladó|kimden|από|发件人|寄件者"
            r"|差出人|보낸\s*사람|expéditeur|remitente|mittente|afzender|avsändare|afsender",
    "date": r"sent|date|envoyé(?:\s+le)?|gesendet|datum|enviado(?:\s+el)?|enviada(?:\s+em)?"
            r"|fecha|inviato|data|verzonden|skickat|sendt|dato|wysłano|odesláno|отправлено"
            r"|дата|lähetetty|päivämäärä|elküldve|dátum|gönderildi|tarih|ημερομηνία|στάλθηκε"
            r"|发送时间|發送時間|日期|送信日時|보낸\s*날짜|message\s+du|sent\s+at",
    "to": r"to|à|a|an|para|aan|til|till|do|komu|кому|vastaanottaja|címzett|kime|προς|收件人"
          r"|宛先|받는\s*사람|destinataire|destinatario",
    "cc": r"cc|copie(?:\s+à)?|kopie|kopia|копия|kopio|másolat|bilgi|抄送|副本",
    "subject": r"subject|objet|sujet|betreff|asunto|assunto|oggetto|onderwerp|emne|ämne|temat"
               r"|předmět|тема|aihe|tárgy|konu|θέμα|主题|主旨|件名|제목|re",
}
_LABEL = re.compile(
    r"^\s*\*?\s*(" + "|".join(f"(?P<{k}>{v})" for k, v in _LABELS.items()) + r")\s*\*?\s*[:：]"
    r"\s*\*?(?P<value>.*)$",
    re.I,
)
_SEPARATOR_WORDS = re.compile(
    r"original|origin|ursprüngliche|oprindelig|opprinnelig|ursprungligt|alkuperäinen|исходное"
    r"|оригинальное|oryginalna|původní|eredeti|forward|weitergeleitet|reenviado|transféré"
    r"|inoltrato|doorgestuurd|vidarebefordrat|videresendt|пересыла|przekazan|reply\s+message"
    r"|antwort\s+nachricht|message\s+d'origine|原始邮件|原始郵件|元のメッセージ|전달된\s*메시지",
    re.I,
)
_SEPARATOR_LINES = re.compile(
    r"^(?:begin\s+forwarded\s+message|début\s+du\s+message\s+réexpédié"
    r"|anfang\s+der\s+weitergeleiteten\s+nachricht|inizio\s+messaggio\s+inoltrato"
    r"|comienzo\s+del\s+mensaje\s+reenviado|início\s+da\s+mensagem\s+reencaminhada)\s*:?\s*$",
    re.I,
)
_ARROWS = re.compile(r"^>{2,}.*\S.*<{2,}\s*$")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"), None)


def clean_line(line: str) -> str:
    """A line without the invisible marks some programs put around dates and names."""
    return line.translate(_INVISIBLE).replace("\xa0", " ").replace("\u202f", " ")


def is_quoted(line: str) -> bool:
    """True for a '>'-quoted line; '>>> link <<<' arrows around a link are decoration."""
    stripped = line.lstrip()
    return stripped.startswith(">") and not _ARROWS.match(stripped)


def could_start_history(line: str) -> bool:
    """A cheap test first: every header, attribution and separator has one of these marks."""
    return bool(_MARKS.search(line) or _LEAD.match(line.strip()) or _SEPARATOR_LINES.match(
        line.strip()))


def is_attribution(text: str) -> bool:
    """True when text (one or a few joined lines) introduces an earlier message."""
    text = text.strip()
    framed = _FRAME.match(text)
    if framed:
        text = framed.group(1).strip()
    if not text or len(text) > _MAX_ATTRIBUTION:
        return False
    address = bool(_ADDRESS.search(text))
    evidence = address or bool(_DATEISH.search(text)) or bool(framed) or bool(_LEAD.match(text))
    if not evidence:
        return False
    # the verb ends the line, or only the sender and a colon follow it (searched from near the
    # end: a verb is at most 30 characters, the sender at most 200)
    verb = _VERB_END.search(text, max(0, len(text) - 45)) or (
        text.endswith((":", "：")) and _VERB_COLON.search(text, max(0, len(text) - 260)))
    if verb and not _FIRST_PERSON.search(text):
        return True
    # "<date> <who> <address>:" with no verb (Gmail's ISO date form, Yandex, mail.ru, Japanese)
    # ending with the bracketed address, so prose such as "write to x@y on 3.4.:" stays
    return bool(_DATEISH.search(text) and _BRACKETED_END.search(text))


def dated_address_line(text: str) -> bool:
    """A line with a date and an address, which introduces a quote when one follows it."""
    text = text.strip()
    return len(text) <= _MAX_ATTRIBUTION and bool(_ADDRESS.search(text)) and bool(
        _DATEISH.search(text))


def attribution_span(lines: list[str], i: int) -> int:
    """Number of lines (1-5) of an attribution starting at line i, or 0."""
    if is_quoted(lines[i]) or not lines[i].strip() or len(lines[i]) > _MAX_ATTRIBUTION:
        return 0
    parts: list[str] = []
    first = lines[i].strip()
    # Only a line that starts like an attribution (a lead word, a date) or breaks off at the
    # sender's address may continue below.
    opens = _LEAD.match(first) or _DATEISH.search(first[:40]) or _OPEN_END.search(first)
    limit = 5 if opens else 1
    for j in range(i, min(len(lines), i + limit)):
        line = lines[j].strip()
        if j > i:
            if not line:
                continue  # a wrapped attribution may hold a blank line (Polymail)
            if is_quoted(line):
                # only a short '> wrote:' tail belongs to it; other quoted lines are the quote
                if len(line) > 20 or not line.endswith(":"):
                    break
                line = line.lstrip("> ")
            if parts[-1].endswith((".", "!", "?", "。", "！", "？")) or (
                (_LEAD.match(line) or _DATEISH.match(line)) and is_attribution(line)
            ):
                break  # a wrapped attribution is one sentence; a later line may start its own
        parts.append(line)
        if is_attribution(" ".join(parts)):
            return j - i + 1
    return 0


def _label(line: str) -> tuple[str, str] | None:
    found = _LABEL.match(line)
    if not found:
        return None
    kind = next(k for k in _LABELS if found.group(k))
    return kind, found.group("value").strip()


def header_block_span(lines: list[str], i: int, ruled: bool = False) -> int:
    """Number of lines of an Outlook-style header block starting at line i, or 0.

    ruled: the block sits under a rule line, which is evidence enough that it is copied headers.
    """
    first = _label(lines[i])
    if first is None or is_quoted(lines[i]):
        return 0
    kinds: dict[str, str] = {first[0]: first[1]}
    end, loose = i + 1, 0
    for j in range(i + 1, min(len(lines), i + 9)):
        if not lines[j].strip():
            if len(kinds) >= 2:
                break
            continue
        found = _label(lines[j])
        if found is None:
            loose += 1  # a value wrapped onto the next line ("From: Name\n<address>")
            if loose > 2:
                break
            continue
        kinds.setdefault(found[0], found[1])
        end = j + 1
    if len(kinds) < 2 or "date" not in kinds:
        return 0
    # Evidence that these are copied headers, not prose starting with "From:" and "Sent:".
    dated = bool(_DATEISH.search(kinds.get("date", "")))
    addressed = bool(_ADDRESS.search(" ".join(lines[i:end])))
    return end - i if dated or addressed or ruled else 0


def is_separator(line: str) -> bool:
    """True for '-----Original Message-----' and its translations, or 'Begin forwarded message'."""
    text = line.strip()
    framed = re.match(r"^[-_=*\s]{2,}(.{3,60}?)[-_=*\s]{2,}$", text)
    if framed and _SEPARATOR_WORDS.search(framed.group(1)):
        return True
    return bool(_SEPARATOR_LINES.match(text))


def split_inline_attribution(line: str) -> tuple[str, str] | None:
    """('reply', 'On <date> <who> wrote:') when a reply and an attribution share one line."""
    if is_quoted(line):
        return None
    for found in re.finditer(r"(?:-{2,}\s*)?\b(?:On)\s", line):
        if found.start() == 0:
            continue
        head, tail = line[: found.start()].rstrip(" -"), line[found.start():]
        if head.strip() and is_attribution(tail.lstrip("- ")):
            return head, tail
    return None
