"""The "none of these" benchmark (``bench/oos_none.py``): the same-cost threshold it compares against keeps the
accuracy it is given."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _bench(name: str):
    sys.path.insert(0, str(BENCH))  # the script imports its siblings ``common`` and ``oos_indomain``
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_same_cost_threshold_keeps_the_given_accuracy() -> None:
    none = _bench("oos_none")
    # 10 in-scope queries, 8 right (scores 1..8), 2 wrong; accuracy 60 % keeps the 6 highest right ones
    raw = {"in_scope": np.array([1, 2, 3, 4, 5, 6, 7, 8, 0.5, 9.0]),
           "right": np.array([True] * 8 + [False, False]),
           "unseen": np.array([0.0, 2.5, 3.5, 10.0])}
    out = none.same_cost(raw, 60.0, ("unseen",))
    # threshold 3: rejects right scores 1 and 2 (80 % -> 60 %); unseen below 3: 0.0 and 2.5
    assert out == {"unseen@same_cost": 0.5}
    assert none.same_cost(raw, 80.0, ("unseen",)) == {"unseen@same_cost": 0.0}  # nothing to give up
    assert none.same_cost(raw, 0.0, ("unseen",)) == {"unseen@same_cost": 1.0}  # reject every right answer
