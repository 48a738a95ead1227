"""The return date an out-of-office reply announces, in English, French, German or Spanish."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

_MONTHS = {
    # English
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
    # French (accents removed before lookup)
    "janvier": 1, "janv": 1, "fevrier": 2, "fevr": 2, "fev": 2, "mars": 3, "avril": 4,
    "avr": 4, "mai": 5, "juin": 6, "juillet": 7, "juil": 7, "aout": 8, "septembre": 9,
    "octobre": 10, "novembre": 11, "decembre": 12,
    # German
    "januar": 1, "jaenner": 1, "janner": 1, "februar": 2, "maerz": 3, "marz": 3, "juni": 6,
    "juli": 7, "oktober": 10, "okt": 10, "dezember": 12, "dez": 12,
    # Spanish
    "enero": 1, "ene": 1, "febrero": 2, "marzo": 3, "abril": 4, "abr": 4, "mayo": 5,
    "junio": 6, "julio": 7, "agosto": 8, "ago": 8, "septiembre": 9, "setiembre": 9,
    "octubre": 10, "noviembre": 11, "diciembre": 12, "dic": 12,
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
# Words after which the next date is the day the sender is back ...
_RETURN_TRIGGER = re.compile(
    r"\b(?:back|return(?:ing|s)?|reachable|available|retour|reviendrai|zuruck|wieder|ab"
    r"|regres\w*|vuelta|volvere|reincorpor\w*)\b",
    re.IGNORECASE,
)
# ... or, weaker, the last day away: used only when no return date is stated.
_UNTIL_TRIGGER = re.compile(
    r"\b(?:until|till|through|jusqu'?au|bis|hasta)\b",
    re.IGNORECASE,
)
_DATES = [
    # 2027-01-11
    ("ymd", re.compile(r"\b(20\d\d)-(\d{1,2})-(\d{1,2})\b")),
    # 12 January 2027, 5 janvier, 7. Januar, 8 de enero de 2027, 12th of January
    (
        "dmy",
        re.compile(
            rf"\b(\d{{1,2}})(?:st|nd|rd|th|er)?\.?\s+(?:of\s+|de\s+)?({_MONTH})\.?"
            rf"(?:,?\s+(?:de\s+)?(20\d\d))?\b",
            re.IGNORECASE,
        ),
    ),
    # January 12, 2027 / January 12th
    (
        "mdy",
        re.compile(
            rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(20\d\d))?", re.IGNORECASE
        ),
    ),
    # 07.01.2027 or 7.1. (German), 07/01/2027 (day first: fr, de, es)
    ("dmy_num", re.compile(r"\b(\d{1,2})[./](\d{1,2})(?:[./]((?:20)?\d\d)\b|\.)")),
]
_WINDOW = 60  # characters after a trigger word in which the date must start


def _fold(text: str) -> str:
    """Lower-case without accents, so 'Décembre' and 'décembre' look up the same month."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _anchor(day: int, month: int, year: int | None, today: date | None) -> date | None:
    try:
        if year is not None:
            return date(year if year > 99 else 2000 + year, month, day)
        if today is None:
            return None
        found = date(today.year, month, day)
        # A year-less date before today can only mean next year ("back on 5 January" in December).
        return found if found >= today else date(today.year + 1, month, day)
    except ValueError:
        return None


def _parse(kind: str, m: re.Match[str], today: date | None) -> date | None:
    if kind == "ymd":
        return _anchor(int(m.group(3)), int(m.group(2)), int(m.group(1)), today)
    if kind == "dmy":
        year = int(m.group(3)) if m.group(3) else None
        return _anchor(int(m.group(1)), _MONTHS[m.group(2).lower()], year, today)
    if kind == "mdy":
        year = int(m.group(3)) if m.group(3) else None
        return _anchor(int(m.group(2)), _MONTHS[m.group(1).lower()], year, today)
    year = int(m.group(3)) if m.group(3) else None
    return _anchor(int(m.group(1)), int(m.group(2)), year, today)


def _first_date(window: str, today: date | None) -> date | None:
    best: tuple[int, date] | None = None
    for kind, pattern in _DATES:
        m = pattern.search(window)
        if m and m.start() < _WINDOW:
            found = _parse(kind, m, today)
            if found and (best is None or m.start() < best[0]):
                best = (m.start(), found)
    return best[1] if best else None


def find_return_date(text: str, today: date | None) -> date | None:
    """The date stated after a 'back/retour/wieder' word, else after 'until/bis/hasta', or None."""
    folded = _fold(text)
    for trigger_words in (_RETURN_TRIGGER, _UNTIL_TRIGGER):
        for trigger in trigger_words.finditer(folded):
            found = _first_date(folded[trigger.end() : trigger.end() + _WINDOW + 40], today)
            if found:
                return found
    return None


def dates_in(text: str, today: date | None) -> list[tuple[int, date]]:
    """Every date written in the text, as (where it starts, the date), in reading order."""
    folded = _fold(text)
    found: dict[int, date] = {}
    for kind, pattern in _DATES:
        for m in pattern.finditer(folded):
            parsed = _parse(kind, m, today)
            if parsed is not None:
                found.setdefault(m.start(), parsed)
    return sorted(found.items())
