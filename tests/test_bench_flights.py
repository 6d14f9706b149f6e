"""The synthetic flight-booking set of ``bench/flights.py``: reproducible, ATIS-shaped (16 intents, the test
dominated by plain "flight" requests), and no test text or template shared with the training pool."""

from __future__ import annotations

import re
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _flights():
    sys.path.insert(0, str(BENCH))
    try:
        import flights
    finally:
        sys.path.remove(str(BENCH))
    return flights


def test_flight_set_is_reproducible_and_shaped_like_atis() -> None:
    flights = _flights()
    train, test = flights.flight_set(seed=0)
    again_train, again_test = flights.flight_set(seed=0)
    assert train.equals(again_train) and test.equals(again_test)
    assert not flights.flight_set(seed=1)[1].equals(test)
    assert sorted(train.label.unique()) == sorted(flights.TEMPLATES) and len(flights.TEMPLATES) == 16
    assert (train.label.value_counts() == 40).all()
    assert test.label.value_counts().to_dict() == flights.TEST_COUNTS
    assert 0.65 < (test.label == "flight").mean() < 0.75
    assert not set(train.text) & set(test.text)
    assert train.text.str.strip().eq(train.text).all() and not train.text.str.contains(r"\{|\}|  ").any()


def test_train_and_test_texts_come_from_disjoint_templates() -> None:
    flights = _flights()
    train, test = flights.flight_set(seed=0, train_per_intent=10, test_counts={"flight": 10, "airfare": 5})
    assert set(test.label) == {"flight", "airfare"} and len(test) == 15
    def pattern(template: str) -> re.Pattern[str]:
        parts = re.split(r"\{\w+\}", template)
        return re.compile(".*".join(re.escape(p) for p in parts).replace("\\ ", " ?") + "$")

    for intent in ("flight", "airfare"):
        halves = [[pattern(t) for t in flights.TEMPLATES[intent][h::2]] for h in (0, 1)]
        for text, half in [*((t, 0) for t in train.text[train.label == intent]),
                           *((t, 1) for t in test.text[test.label == intent])]:
            assert any(p.match(text) for p in halves[half]), (intent, half, text)
