"""The episode sampler of fine-tuning: which of the user's examples one training step sees."""

from __future__ import annotations

import numpy as np


def sample_episode(labels: np.ndarray, rows: np.ndarray, n_labels: int, n_shots: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Rows of one episode: up to ``n_labels`` labels (among those of ``rows`` with >= 2 examples, when any),
    up to ``n_shots`` examples each, drawn without replacement."""
    present, counts = np.unique(labels[rows], return_counts=True)
    pool = present[counts >= 2] if (counts >= 2).sum() >= 2 else present
    chosen = rng.choice(pool, size=min(n_labels, len(pool)), replace=False)
    out = []
    for lab in chosen:
        mine = rows[labels[rows] == lab]
        out.append(rng.choice(mine, size=min(n_shots, len(mine)), replace=False))
    return np.concatenate(out)
