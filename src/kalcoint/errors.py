"""Errors a user can fix.

Every problem with input (a file, an option, a model) is raised as
:class:`KalcointError` with a one-line message that says what is wrong, where,
and how to fix it. The command line prints that line to stderr and exits with
code 2; library users catch it like any ``ValueError``.
"""

from __future__ import annotations


class KalcointError(ValueError):
    """A problem with the user's input; ``str(err)`` is one line: what, where, how to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ComputationError(KalcointError):
    """A computation that cannot give a right answer (singular matrix, non-finite result)."""
