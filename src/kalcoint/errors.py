"""Errors a user can fix.

Every problem with input (a file, an option, a model) is raised as
:class:`KalcointError` with a one-line message that says what is wrong, where,
and how to fix it. The command line prints that line to stderr and exits with
code 2; library users catch it like any ``ValueError``.

Messages name the library's parameters (``"delta 2 must be in (0, 1)"``), never a
command-line flag; ``params`` lists the parameters a message names, so that the
command line can show its own flags instead (``--delta``).
"""

from __future__ import annotations

from collections.abc import Sequence


class KalcointError(ValueError):
    """A problem with the user's input; ``str(err)`` is one line: what, where, how to fix.

    Parameters
    ----------
    message : str
        What is wrong, where, and how to fix it (whitespace is folded to one line).
    params : str or sequence of str, optional
        The names of the parameters the message names (e.g. ``"train_fraction"``).

    Examples
    --------
    >>> err = KalcointError("delta 2 must be in (0, 1)", params="delta")
    >>> str(err), err.params
    ('delta 2 must be in (0, 1)', ('delta',))
    """

    def __init__(self, message: str, params: str | Sequence[str] = ()) -> None:
        super().__init__(" ".join(str(message).split()))
        self.params: tuple[str, ...] = (params,) if isinstance(params, str) else tuple(params)


class ComputationError(KalcointError):
    """A computation that cannot give a right answer (singular matrix, non-finite result).

    Examples
    --------
    >>> isinstance(ComputationError("Johansen test failed"), KalcointError)
    True
    """


class MissingGlyphWarning(UserWarning):
    """Characters of a figure's text (an asset's name) that its font cannot draw: they show as
    empty boxes. Issued once per figure, in place of matplotlib's warning per character.

    Examples
    --------
    >>> issubclass(MissingGlyphWarning, UserWarning)
    True
    """
