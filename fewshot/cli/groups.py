"""``classify --groups``: the rows answered unknown and the least confident others, gathered in bounded memory,
written as groups of similar rows."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..progress import tqdm_progress
from .notes import _progress_bar, _rows


class _GroupCandidates:
    """The rows ``classify --groups`` may group, gathered chunk by chunk in bounded memory: every row answered
    unknown, and the :data:`~fewshot.uncovered.MAX_GROUP_TEXTS` least in-scope others (a heap)."""

    def __init__(self, unknown_label: str) -> None:
        self.unknown_label = unknown_label
        self.unknown: list[tuple[int, str, str, float]] = []  # (row, text, answer, in-scope score)
        self.others: list[tuple[float, int, str, str]] = []  # a max-heap of the lowest scores: (-score, ...)

    def add(self, offset: int, texts: Any, answers: Any, scores: Any) -> None:
        import heapq

        import numpy as np

        from ..io.tables import row_number
        from ..uncovered import MAX_GROUP_TEXTS

        for j, (text, answer, score) in enumerate(zip(texts, answers, scores)):
            if not str(answer):
                continue  # a blank text, left unlabelled
            value = float(score) if str(score) else float("nan")
            value = -np.inf if np.isnan(value) else value
            row = row_number(offset + j)
            if answer == self.unknown_label:
                self.unknown.append((row, str(text), str(answer), value))
            elif len(self.others) < MAX_GROUP_TEXTS:
                heapq.heappush(self.others, (-value, row, str(text), str(answer)))
            elif -self.others[0][0] > value:
                heapq.heapreplace(self.others, (-value, row, str(text), str(answer)))

    def rows(self) -> list[tuple[int, str, str, float]]:
        """The rows :func:`fewshot.uncovered.pool_rows` picks, in file order: (row, text, answer, score)."""
        import numpy as np

        from ..uncovered import pool_rows

        if not self.unknown:
            return []
        rows = sorted(self.unknown + [(r, t, a, -v) for v, r, t, a in self.others])
        picked = pool_rows(np.array([a == self.unknown_label for _, _, a, _ in rows]),
                           np.array([s for _, _, _, s in rows]))
        return [rows[i] for i in picked]


def _write_groups(clf: Any, candidates: _GroupCandidates, path: Path, written_as: dict[str, str]) -> None:
    """The groups of similar rows among those answered unknown and the least in-scope others
    (:mod:`fewshot.uncovered`) as a CSV: group (1 = the largest), size, row (as a spreadsheet numbers it: 1 = the
    header), the label answered, text; each group's most typical rows first; ``written_as``: ``to_csv`` options,
    those of the labelled output."""
    import numpy as np
    import pandas as pd

    from ..text import MAX_TEXT_CHARS
    from ..uncovered import MAX_GROUP_TEXTS, MIN_GROUP_SIZE, group_vectors

    pool = candidates.rows()
    if not pool:
        print("no row was answered unknown (--auto-unknown, --min-confidence or 'unknown' examples let it answer "
              f"unknown), so {path} lists no group", file=sys.stderr)
    elif len(pool) == MAX_GROUP_TEXTS:
        print(f"grouping the {MAX_GROUP_TEXTS} least in-scope rows", file=sys.stderr)
    texts = [t[:MAX_TEXT_CHARS] for _, t, _, _ in pool]
    with _progress_bar("grouping the least confident rows", total=len(texts)) as bar:
        vectors = clf.encoder.encode(texts, progress=tqdm_progress(bar)) if texts else np.empty((0, 1))
    groups = group_vectors(vectors)
    rows = [(n, len(g), pool[i][0], pool[i][2], pool[i][1]) for n, g in enumerate(groups, start=1) for i in g]
    pd.DataFrame(rows, columns=["group", "size", "row", "answered", "text"]).to_csv(path, index=False, **written_as)
    if pool and not groups:
        print(f"among the {_rows(len(pool))} answered unknown or least confident, no {MIN_GROUP_SIZE} are alike: "
              f"{path} lists no group", file=sys.stderr)
    elif groups:
        print(f"wrote {len(groups)} group(s) of similar rows, among those answered unknown and the least confident "
              f"others ({len(rows)} rows), to {path}", file=sys.stderr)
