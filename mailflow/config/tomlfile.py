"""Reading TOML files and checking their keys, with errors that name the file, key and line."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mailflow.errors import ConfigError


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning every failure into a ConfigError naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: file not found") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from err
    try:
        # utf-8-sig: Windows editors (Notepad) start a UTF-8 file with a byte order mark
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start})") from err
    except tomllib.TOMLDecodeError as err:
        # tomllib's message already carries "(at line N, column M)"
        raise ConfigError(f"{path}: invalid TOML: {err}") from err
    except RecursionError:
        # tomllib recurses per nested array or inline table: a few hundred levels exhaust
        # the stack before any of our checks can run
        raise ConfigError(f"{path}: nested too deeply to read (more than {MAX_DEPTH} levels "
                          "of arrays or tables)") from None
    _check_depth(data, path)
    return data


MAX_DEPTH = 32  # far beyond any real config; deeper data would break the store's JSON later


def _check_depth(data: Any, path: Path) -> None:
    """Refuse data nested deeper than MAX_DEPTH (dotted keys nest without recursing in tomllib)."""
    stack: list[tuple[Any, int, str]] = [(data, 0, "")]
    while stack:
        value, depth, key = stack.pop()
        if depth > MAX_DEPTH:
            shown = key if len(key) <= 60 else key[:57] + "..."
            raise ConfigError(f"{path}: {shown}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((v, depth + 1, f"{key}.{k}" if key else str(k))
                         for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, f"{key}[{i}]") for i, v in enumerate(value))


class Section:
    """A view of one TOML table that knows its file and dotted key, for precise errors."""

    def __init__(self, data: Any, path: Path, key: str = "") -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: {key or 'document'}: expected a table, got {_kind(data)}")
        self.data = data
        self.path = path
        self.key = key

    def where(self, name: str | None = None) -> str:
        """The 'file: key' prefix used in error messages."""
        dotted = self._dotted(name)
        return f"{self.path}: {dotted}" if dotted else str(self.path)

    def _dotted(self, name: str | None) -> str:
        # a quoted TOML key may hold anything: show an odd one quoted, so a message stays one line
        shown = name if name is None or (name.isprintable() and name.strip()) else repr(name)
        return ".".join(p for p in (self.key, shown) if p)

    def error(self, name: str | None, message: str) -> ConfigError:
        """A ConfigError about one key of this table."""
        return ConfigError(f"{self.where(name)}: {message}")

    def check_keys(self, allowed: Iterable[str]) -> None:
        """Reject unknown keys, suggesting the closest known one (catches typos like 'aproval')."""
        allowed = list(allowed)
        for name in self.data:
            if name not in allowed:
                import difflib  # (only for a typo: every command loads config)
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise self.error(name, f"unknown key{hint}; expected one of: {', '.join(allowed)}")

    def has(self, name: str) -> bool:
        """True when the key is present."""
        return name in self.data

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None,
            required: bool = False) -> Any:
        """The value of a key, checked against a type; missing keys give the default."""
        if name not in self.data:
            if required:
                raise self.error(name, "required key is missing")
            return default
        value = self.data[name]
        # bool is an int in Python; never accept true/false where a number is meant
        if isinstance(value, bool) and bool not in _as_tuple(kind):
            raise self.error(name, f"expected {_names(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.error(name, f"expected {_names(kind)}, got {_kind(value)}")
        return value

    def text(self, name: str, default: str | None = None, required: bool = False) -> str | None:
        """A string value, stripped; an empty required string is an error."""
        value = self.get(name, str, default, required)
        if value is not None:
            value = value.strip()
            if required and not value:
                raise self.error(name, "must not be empty")
        return value

    def date(self, name: str, required: bool = False) -> dt.date | None:
        """A date given as a TOML date or an ISO 'YYYY-MM-DD' string."""
        value = self.get(name, (dt.date, str), None, required)
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError as err:
            raise self.error(name, f"expected a date like 2026-12-31, got {value!r}") from err

    def section(self, name: str, required: bool = False) -> Section | None:
        """A sub-table as a Section, or None when absent."""
        if name not in self.data:
            if required:
                raise self.error(name, "required table is missing")
            return None
        return Section(self.data[name], self.path, self._dotted(name))

    def sections(self, name: str) -> list[Section]:
        """An array of tables ([[name]]) as Sections; absent means empty."""
        value = self.get(name, list, [])
        return [Section(item, self.path, f"{self._dotted(name)}[{i}]")
                for i, item in enumerate(value)]


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "an array", dict: "a table", dt.date: "a date", dt.datetime: "a date-time"}


def _names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in _as_tuple(kind))


def _kind(value: Any) -> str:
    for k in (bool, str, int, float, list, dict, dt.datetime, dt.date):
        if isinstance(value, k):
            return _TYPE_NAMES[k]
    return type(value).__name__
