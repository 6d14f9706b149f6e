"""The app's downloads: CSV files written to a fresh temporary folder (pruned after an hour), formula cells
neutralised and with a byte-order mark, so that a spreadsheet opens them safely and in the right encoding.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from ..errors import FewShotError
from ..io.formulas import neutralize_formulas
from . import state as st

OUT_TTL_SECONDS = 3600


def out_dir() -> Path:
    """A fresh folder for one download, under the app's temp folder (folders older than an hour pruned)."""
    base = Path(tempfile.gettempdir()) / "fewshot-app"
    base.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in base.iterdir():
        try:
            if now - old.stat().st_mtime > OUT_TTL_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(dir=base))


def safe_stem(name: str, default: str) -> str:
    """A file stem made of safe characters only."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(str(name or "")).stem)[:60]
    return stem.strip("_") or default


DOWNLOAD_ENCODING = "utf-8-sig"
"""The app's CSV downloads start with a byte-order mark: without one, Excel opens a UTF-8 CSV as its local code
page and shows "café" as "cafÃ©"; fewshot, pandas and spreadsheets read it either way."""


def write_download(df: pd.DataFrame, path: Path, sep: str = ",") -> Path:
    """``df`` as a CSV download: formula cells neutralised, UTF-8 with a byte-order mark, delimited by ``sep``."""
    neutralize_formulas(df).to_csv(path, index=False, encoding=DOWNLOAD_ENCODING, sep=sep)
    return path


def export_csv(rows: st.Rows) -> Path:
    """The label set as a ``text,label`` CSV (formula cells neutralised)."""
    rows = st.complete_rows(rows)
    if not rows:
        raise FewShotError("the label set is empty; nothing to export")
    df = pd.DataFrame({"text": [r[1] for r in rows], "label": [r[0] for r in rows]})
    return write_download(df, out_dir() / "label_set.csv")


def write_labelled(df: pd.DataFrame, source_name: str, sep: str = ",") -> Path:
    """The labelled CSV, formula cells neutralised, named after the upload, delimited by ``sep``."""
    return write_download(df, out_dir() / f"{safe_stem(source_name, 'texts')}_labelled.csv", sep)
