"""Whole-number settings of the app read from the environment, checked so that a bad value stops it with one line
naming the variable (not a traceback from ``int()``)."""

from __future__ import annotations

import os

from ..errors import FewShotError


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """The environment variable ``name`` as a whole number of at least ``minimum`` (``default`` when unset or
    empty); a :class:`FewShotError` naming it otherwise."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < minimum:
        raise FewShotError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    return int(value)
