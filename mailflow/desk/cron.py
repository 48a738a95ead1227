"""Running from cron or systemd: the crontab line and the user units, from the packaged files.

The wrapper (`mailflow-cron.sh`: timestamps, rotation, exit 75 kept quiet, mailflow's exit
status) and the systemd units ship inside the package, so a pip install has them too.
"""

from __future__ import annotations

import os
import shlex
from importlib import resources
from pathlib import Path

from mailflow.errors import MailflowError

UNIT_NAMES = ("mailflow.service", "mailflow.timer")


def cron_dir() -> Path:
    """The packaged cron/systemd files."""
    return Path(str(resources.files("mailflow") / "cron"))


def wrapper_path() -> Path:
    """The packaged wrapper script (run with /bin/sh: a wheel may not keep its x bit)."""
    return cron_dir() / "mailflow-cron.sh"


def cron_line(root: Path, exe: str, every: int = 5, plain: bool = False) -> str:
    """The crontab line running `mailflow run` for a project every `every` minutes."""
    if not plain:
        venv = Path(exe).parent.parent
        command = (f"/bin/sh {shlex.quote(str(wrapper_path()))} {shlex.quote(str(root))} "
                   f"{shlex.quote(str(venv))}")
    else:
        # mailflow prints nothing when all is well; whatever it prints goes to the log and to
        # cron (which mails it), and the line ends with mailflow's own exit status
        log = shlex.quote(str(root / ".mailflow" / "cron.log"))
        command = (f"out=$({shlex.quote(exe)} --project {shlex.quote(str(root))} run 2>&1); "
                   f"s=$?; [ -z \"$out\" ] || printf '%s\\n' \"$out\" | tee -a {log}; exit $s")
    # in a crontab, % means a new line unless escaped
    return f"*/{every} * * * * {command.replace('%', chr(92) + '%')}"


def systemd_units(root: Path, exe: str) -> dict[str, str]:
    """The user units for this project: the packaged ones with the project and paths filled in."""
    venv = Path(exe).parent.parent
    service = (cron_dir() / "mailflow.service").read_text(encoding="utf-8")
    lines = []
    for line in service.splitlines():
        if line.startswith("EnvironmentFile="):
            # optional here: the project and virtualenv are in ExecStart; secrets may go there
            line = "EnvironmentFile=-%h/.config/mailflow/env"
        elif line.startswith("ExecStart="):
            line = (f"ExecStart=/bin/sh {_systemd_quote(str(wrapper_path()))} "
                    f"{_systemd_quote(str(root))} {_systemd_quote(str(venv))}")
        elif line.startswith("# ExecStart=") or line.startswith("# or, with the rotating"):
            continue
        lines.append(line)
    timer = (cron_dir() / "mailflow.timer").read_text(encoding="utf-8")
    return {"mailflow.service": "\n".join(lines) + "\n", "mailflow.timer": timer}


def _systemd_quote(text: str) -> str:
    # systemd splits ExecStart like a shell but expands % specifiers: double them
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def user_unit_dir() -> Path:
    """~/.config/systemd/user (or under $XDG_CONFIG_HOME)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def install_units(units: dict[str, str], dest: Path) -> list[Path]:
    """Write the units into `dest` (created); returns the files written."""
    written = []
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for name, text in units.items():
            path = dest / name
            path.write_text(text, encoding="utf-8")
            written.append(path)
    except OSError as err:
        raise MailflowError(f"{dest}: cannot write the units: {err.strerror}") from None
    return written
