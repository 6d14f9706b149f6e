"""``bench/fastfit_compare.py`` runs in a venv of its own: here (no fast-fit) it says so and exits 0, and its
offline accuracy is the share of predictions equal to the references."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
from test_bench_oos_none import _bench


def _script():
    return _bench("fastfit_compare")


@pytest.mark.skipif(importlib.util.find_spec("fastfit") is not None, reason="fast-fit is installed here")
def test_without_fastfit_it_skips_cleanly(tmp_path: Path, capsys) -> None:
    (tmp_path / "hwu64").mkdir()
    pd.DataFrame({"text": ["wake me up at 7"], "label": ["alarm_set"]}).to_csv(tmp_path / "hwu64" / "test.csv",
                                                                              index=False)
    assert _script().main(["--data", str(tmp_path)]) == 0
    assert "skipping: fastfit" in capsys.readouterr().out


def test_the_offline_accuracy_counts_equal_predictions() -> None:
    accuracy = _script().OfflineAccuracy().compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2])
    assert accuracy == {"accuracy": 0.75}
