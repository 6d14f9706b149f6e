"""Sub-span "views" of a text: overlapping word windows, each encoded like a text of its own.

A text that asks for two things holds each request in its own span. Its whole-text embedding averages the
two and sits between the two labels' clusters; a window over part of the text sits near one of them. The
multi-label model scores a label by the best of the text's views (the whole text included), max-pooling of
instance scores as in multiple-instance learning (Dietterich et al. 1997, "Solving the multiple instance
problem with axis-parallel rectangles"). Windows are positional (half the words, overlapping by half),
never cut at words such as "and": no rule about conjunctions, and a single-intent text's windows still say
its one intent. Encoding windows as separate texts (a window's tokens attend only to each other) scored a
little higher in micro-F1 on both development sets than pooling windows of token states from the whole
text's one forward pass (``bench/multilabel.py``, "token windows"), which costs no extra encoding and
scored about the same subset accuracy: the cheaper alternative if encoding time matters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

WINDOW_WIDTH = 0.5
"""Window width as a share of the text's words (chosen on the development splits of ``bench/multilabel.py``)."""
MIN_WINDOW_WORDS = 3
"""Texts of fewer than twice this many words get no windows (too short to hold two requests)."""


def window_bounds(n: int, width: float = WINDOW_WIDTH, min_len: int = MIN_WINDOW_WORDS) -> list[tuple[int, int]]:
    """``[start, end)`` windows over ``n`` units (words or tokens): ``ceil(width * n)`` units (at least
    ``min_len``), stepping by half a window, the last ending at ``n``; ``[]`` when ``n < 2 * min_len``."""
    if n < 2 * min_len:
        return []
    k = max(min_len, math.ceil(n * width))
    step = max(1, math.ceil(k / 2))
    out = []
    start = 0
    while True:
        end = min(start + k, n)
        out.append((start, end))
        if end >= n:
            return out
        start += step


def text_windows(text: str, width: float = WINDOW_WIDTH, min_words: int = MIN_WINDOW_WORDS) -> list[str]:
    """The word windows of one text (:func:`window_bounds` over its words); ``[]`` for a text under
    ``2 * min_words`` words."""
    words = text.split()
    return [" ".join(words[start:end]) for start, end in window_bounds(len(words), width, min_words)]


def windows_of(texts: Sequence[str], width: float = WINDOW_WIDTH,
               min_words: int = MIN_WINDOW_WORDS) -> tuple[list[str], list[int]]:
    """All windows of ``texts`` in one list (to encode in one call) and how many each text has."""
    per = [text_windows(t, width, min_words) for t in texts]
    return [w for ws in per for w in ws], [len(ws) for ws in per]


def build_views(whole: np.ndarray, window_vectors: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
    """Per text a ``(1 + windows, d)`` array: its whole-text vector, then its windows' vectors (in the order
    :func:`windows_of` listed them)."""
    offsets = np.r_[0, np.cumsum(counts)]
    if offsets[-1] != len(window_vectors):
        raise ValueError(f"{len(window_vectors)} window vectors for {offsets[-1]} windows")
    return [np.vstack([whole[i:i + 1], window_vectors[offsets[i]:offsets[i + 1]]]) for i in range(len(whole))]
