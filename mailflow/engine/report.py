"""What one tick did, for the CLI to print (engine/tick.py fills it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TickReport:
    """What one tick did, for the CLI to print (quiet when nothing went wrong)."""

    drafted: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    would_send: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    deferred: int = 0  # due but throttled or outside the window; they go out on a later tick
    problems: list[str] = field(default_factory=list)  # each one line; any makes the exit non-zero
    notes: list[str] = field(default_factory=list)  # worth saying, not failures
    withdrawn: list[str] = field(default_factory=list)  # approvals the new data took back
    replies: int = 0
    unmatched: int = 0  # polled mail that answers nothing we sent
    told: list[str] = field(default_factory=list)  # newly needs the consultant: said once
    waiting: list = field(default_factory=list)  # attention.Need: everything waiting now
    # exit codes of the errors behind `problems` (a server that could not be reached is 6,
    # as the README's table says; any other problem is 1)
    codes: set[int] = field(default_factory=set)

    @property
    def exit_code(self) -> int:
        """0 all is well; else 6 a server not reached, 7 a draft not rendered, 2 bad config, 1."""
        if not (self.problems or self.told):
            return 0
        return next((code for code in (6, 7, 2) if code in self.codes), 1)

    @property
    def ok(self) -> bool:
        """True when nothing needs the consultant's attention."""
        return not self.problems
