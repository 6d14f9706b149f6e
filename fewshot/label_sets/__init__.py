"""The ready example label sets: ``text,label`` CSVs shipped inside the package, four domains. The app offers them,
and their examples are the varied sentences by which :func:`fewshot.batch_reading.calibrated_floor` scales an
encoder's similarities."""

from pathlib import Path

LABEL_SETS_DIR = Path(__file__).resolve().parent
"""The folder of the label sets."""
