"""One exception type for problems the user can fix, and the one way every entry point says them: a message on
stderr (`genre-style: error: <problem>` and its fix), exit code 2, no traceback."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

EXIT_USER_ERROR = 2
_Main = TypeVar("_Main", bound=Callable[..., int])


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


def say_error(error: UserError) -> int:
    """Print the problem and its fix on stderr; returns the exit code that goes with it."""
    print(f"genre-style: error: {error}", file=sys.stderr)
    return EXIT_USER_ERROR


def command(main: _Main) -> _Main:
    """Decorate an entry point's `main(argv) -> exit code`: a UserError it raises becomes `say_error`'s message and code."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> int:
        try:
            return main(*args, **kwargs)
        except UserError as error:
            return say_error(error)

    return wrapper  # type: ignore[return-value]
