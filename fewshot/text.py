"""Texts as the library takes them: validation of user-given texts, label names as text, the length cap."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .errors import FewShotError

MAX_TEXT_CHARS = 10_000
"""Texts are cut to this many characters before encoding: the encoder reads only its first 256 tokens
anyway, and tokenising a 100,000-character paste would cost time for nothing."""

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while texts are encoded (the CLI feeds tqdm, the app gr.Progress)."""


def clean_texts(texts: Iterable[Any], what: str) -> list[str]:
    """``texts`` as a list of non-blank strings; :class:`FewShotError` naming ``what[i]`` otherwise."""
    if isinstance(texts, str):
        raise FewShotError(f"{what} must be a list of strings, got a single string {texts[:40]!r}")
    if isinstance(texts, dict) or not isinstance(texts, Iterable):
        raise FewShotError(f"{what} must be a list of strings, got {type(texts).__name__} {str(texts)[:40]!r}")
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            hint = " (numbers as names: convert them with str() first)" if isinstance(t, int | float) else ""
            raise FewShotError(f"{what}[{i}] must be a string, got {type(t).__name__} {t!r}{hint}")
        if not t.strip():
            raise FewShotError(f"{what}[{i}] is empty; every text needs some words")
        out.append(t)
    return out


def label_text(label: str) -> str:
    """A label's name as an example text: ``lost_card`` / ``lost-card`` -> ``"lost card"``."""
    return " ".join(label.replace("_", " ").replace("-", " ").split())
