"""Bounded load test on loopback: 20 concurrent gradio_client sessions, each with its own labels.

The logic lives in ``bench/load.py`` (which also writes ``bench/results/load.json`` when run directly).
"""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("gradio_client")
from conftest import ROOT  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SESSIONS = 20
TIMEOUT_S = 150.0


def _bench_load():
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_concurrent_sessions_keep_their_own_labels(app_url: str) -> None:
    load = _bench_load()
    result = load.run_load(app_url, sessions=SESSIONS, timeout_s=TIMEOUT_S)
    print("\n" + load.report(result))
    assert result["errors"] == []
    assert result["per_endpoint"]["/classify"]["n"] == SESSIONS
    assert result["per_endpoint"]["/classify_csv"]["n"] == SESSIONS
    assert result["requests"] == 4 * SESSIONS
