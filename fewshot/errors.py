"""The one exception type for bad user input, so every front end can show it as a single clear line."""

from __future__ import annotations

import sys
from pathlib import Path

_PACKAGE = str(Path(__file__).resolve().parent)


class FewShotError(ValueError):
    """Bad input or configuration: the message says what was expected, what came and how to fix it."""


class FewShotWarning(UserWarning):
    """Something the user should know but that does not stop the work (a text cut short, a duplicate)."""


def install_hint(extra: str, *, force: bool = False) -> str:
    """How to install an optional extra, for messages: the released package's form and a checkout's."""
    flag = "--force-reinstall " if force else ""
    return f'pip install {flag}"fewshot[{extra}]" (in a checkout of fewshot: pip install {flag}-e ".[{extra}]")'


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised by the caller of this function name the line that called into
    fewshot (the user's call), however deep inside the library it was raised: a fixed level named fewshot's own
    lines (or torch's, around a generator) when the warning came through a wrapper such as a progress bar's."""
    frame, level, outermost = sys._getframe(1), 1, 1
    while frame is not None:
        if str(Path(frame.f_code.co_filename).resolve()).startswith(_PACKAGE):
            outermost = level
        frame, level = frame.f_back, level + 1
    return outermost + 1
