"""The one exception type for bad user input, so every front end can show it as a single clear line."""

from __future__ import annotations


class FewShotError(ValueError):
    """Bad input or configuration: the message says what was expected, what came and how to fix it."""


class FewShotWarning(UserWarning):
    """Something the user should know but that does not stop the work (a text cut short, a duplicate)."""
