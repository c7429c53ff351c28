"""One exception type for problems the user can fix, so entry points print a message, not a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem caused by input or configuration; `fix` tells the user what to do about it."""

    def __init__(self, problem: str, fix: str | None = None, whole_sweep: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.whole_sweep = whole_sweep  # every job of a multirun would fail the same way: stop it, don't go on

    def __str__(self) -> str:
        return self.problem if not self.fix else f"{self.problem}\n  fix: {self.fix}"


class AudioError(Exception):
    """A single audio file could not be used (unreadable, too short, non-finite); the file is skipped."""
