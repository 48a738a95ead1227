"""Dates, money, numbers and lists in the client's conventions, from CLDR data via Babel.

One style per kind of date across the playbook, so a client never sees two formats of the same
thing: `longdate` for the dates of the plan, `shortdate` in tables and lists, `daymonth` for
near dates in a sentence, `monthyear` for how long we have worked together. Babel is imported on
first use: commands that never render must start fast.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decimal import Decimal

DEFAULT_LOCALE = "en_US"
# the languages the default playbook is written in
PLAYBOOK_LANGUAGES = ("en", "fr", "de", "es")
# the locale a bare language means, for `mailflow init --language`
LANGUAGE_LOCALES = {"en": "en_US", "fr": "fr_FR", "de": "de_DE", "es": "es_ES"}
# locales Babel parses to themselves (a test checks it): most projects use one of them
_KNOWN = frozenset({DEFAULT_LOCALE, "en_GB", *LANGUAGE_LOCALES.values()})


def parse_locale(value: str) -> str:
    """'fr-fr' or 'fr_FR' -> 'fr_FR'; ValueError naming the value when CLDR does not know it."""
    text = str(value).strip()
    if text in _KNOWN:
        return text  # what CLDR says of it, without importing Babel on every start (issue 18)
    from babel import Locale, UnknownLocaleError

    if not re.fullmatch(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*", text):
        raise ValueError(f"expected a locale like en_US, fr_FR or de_DE, got {value!r}")
    try:
        return str(Locale.parse(text.replace("-", "_")))
    except (ValueError, UnknownLocaleError) as err:
        raise ValueError(f"unknown locale {value!r} (expected e.g. en_US, fr_FR, de_DE)") from err


def language_of(locale: str | None) -> str:
    """'fr_FR' -> 'fr': the language a playbook is chosen by."""
    return (locale or DEFAULT_LOCALE).split("_")[0].lower()


def longdate(value: Any, locale: str = DEFAULT_LOCALE) -> str:
    """The dates of the plan: 'Friday, January 29, 2027' (en_US), 'vendredi 29 janvier 2027'."""
    from babel.dates import format_date

    return format_date(as_date(value), "full", locale=locale)


def shortdate(value: Any, locale: str = DEFAULT_LOCALE) -> str:
    """Dates in tables and lists: 'Jan 29, 2027' (en_US), '29 Jan 2027' (en_GB)."""
    return _skeleton("yMMMd", value, locale)


def daymonth(value: Any, locale: str = DEFAULT_LOCALE) -> str:
    """A near date in a sentence, the year going without saying: 'January 29', '29. Januar'."""
    return _skeleton("MMMMd", value, locale)


def weekday_date(value: Any, locale: str = DEFAULT_LOCALE) -> str:
    """A near date with the weekday people plan by: 'Friday, January 29'."""
    from babel.dates import format_date

    pattern = _weekday_pattern(locale)
    return format_date(as_date(value), pattern, locale=locale)


def monthyear(value: Any, locale: str = DEFAULT_LOCALE) -> str:
    """'March 2025', 'mars 2025'."""
    return _skeleton("yMMMM", value, locale)


def time_of_day(value: dt.time | dt.datetime, locale: str = DEFAULT_LOCALE) -> str:
    """'9:30 AM' (en_US), '09:30' (fr_FR)."""
    from babel.dates import format_time

    return format_time(value, "short", locale=locale)


def money(amount: Any, currency: str | None = None, locale: str = DEFAULT_LOCALE) -> str:
    """'$14,250.00' (en_US), '14 250,00 $US' (fr_FR): the currency's own decimals and symbol."""
    from babel.numbers import format_currency, format_decimal

    value = _decimal(amount)
    code = (currency or "").strip().upper()
    if not code:
        return format_decimal(value, format="#,##0.00", locale=locale)
    try:
        return format_currency(value, code, locale=locale)
    except ValueError as err:  # not an ISO 4217 code the CLDR knows
        raise ValueError(f"money: unknown currency {currency!r}") from err


def number(value: Any, locale: str = DEFAULT_LOCALE) -> str:
    """'1,234.5' (en_US), '1 234,5' (fr_FR)."""
    from babel.numbers import format_decimal

    return format_decimal(_decimal(value), locale=locale)


def join_list(items: Any, attribute: str | None = None, locale: str = DEFAULT_LOCALE) -> str:
    """'Ana and Ben', 'Ana, Ben et Carl': strings, or dicts' `attribute`, as the locale lists."""
    from babel.lists import format_list

    names = [str(i.get(attribute) if attribute and isinstance(i, dict) else i) for i in items]
    names = [n for n in names if n and n != "None"]
    if not names:
        return ""
    return format_list(names, locale=locale)


def as_date(value: Any) -> dt.date:
    """A date from a date, a datetime (already local) or an ISO string; ValueError otherwise."""
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"expected a date, got {value!r}")


def _skeleton(skeleton: str, value: Any, locale: str) -> str:
    from babel.dates import format_skeleton

    return format_skeleton(skeleton, as_date(value), locale=locale)


@lru_cache(maxsize=64)
def _weekday_pattern(locale: str) -> str:
    # CLDR's "MMMMEd" pattern abbreviates the weekday ("Fri, January 29"); spell it out
    from babel import Locale

    skeletons = Locale.parse(locale).datetime_skeletons
    pattern = skeletons.get("MMMMEd") or skeletons.get("MMMEd") or "EEEE d MMMM"
    return re.sub(r"E+", "EEEE", str(pattern.pattern if hasattr(pattern, "pattern") else pattern))


def _decimal(amount: Any) -> Decimal:
    from decimal import Decimal, InvalidOperation  # noqa: F811 - (emails only: a view loads this module)

    if isinstance(amount, bool):
        raise ValueError(f"expected a number, got {amount!r}")
    try:
        return Decimal(str(amount).replace(",", ""))
    except InvalidOperation as err:
        raise ValueError(f"expected a number, got {amount!r}") from err
