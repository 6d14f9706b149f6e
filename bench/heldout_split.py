"""Held-out intents of one dataset as three CSVs that ``fewshot evaluate`` reads: the in-domain unknown check on
any labelled data (a bank's 77 intents, 50 known and 27 held out, say).

    python bench/heldout_split.py FOLDER --known 50 [--shots 5|all] [--seed 0] --out SPLIT
    fewshot evaluate --support SPLIT/support.csv --test SPLIT/test.csv --oos SPLIT/oos.csv [--batch-aware]

``FOLDER`` holds ``train.csv`` and ``test.csv`` (``text,label``; other column names with ``--text-column`` and
``--label-column``). ``--known`` labels, drawn at random with ``--seed``, are in scope: ``support.csv`` holds
``--shots`` random ``train`` rows of each (``all``: every one, to see what more examples would give),
``test.csv`` their ``test`` rows. ``oos.csv`` holds the ``test`` rows of
every other label: out-of-scope texts of the labels' own domain. ``fewshot evaluate`` then reports the in-domain
AUROC, the best recall at a 2-point cost and FPR@95 (docs/unknown-in-domain.md, "Checking it on your own data").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import common  # bench/ is on the path as a script


def split(train: pd.DataFrame, test: pd.DataFrame, known: int, shots: int | None, seed: int
          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(support, test, oos)``: ``shots`` train rows (None: all) of ``known`` random labels, their test rows, the
    test rows of the other labels (``text`` and ``label`` columns)."""
    labels = sorted(set(train.label) & set(test.label))
    if not 2 <= known < len(labels):
        raise SystemExit(f"--known must be at least 2 and below the {len(labels)} labels found in both files, "
                         f"got {known}")
    rng = np.random.default_rng(seed)
    inside = set(rng.choice(labels, size=known, replace=False).tolist())
    pool = train[train.label.isin(inside)]
    few = pool.groupby("label").size()
    if shots is not None and few.min() < shots:
        raise SystemExit(f"label {few.idxmin()!r} has {few.min()} train rows, fewer than --shots {shots}")
    support = pool if shots is None else common.draw_support(pool, shots, seed)
    return support, test[test.label.isin(inside)], test[~test.label.isin(inside) & test.label.isin(labels)]


def _shots(value: str) -> int | None:
    if value == "all":
        return None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number or 'all', got {value!r}")
    return int(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder holding train.csv and test.csv")
    parser.add_argument("--known", type=int, required=True, help="labels kept in scope (the rest are held out)")
    parser.add_argument("--shots", type=_shots, default=5, help="examples per known label (default 5; all: every "
                                                                "train row of the known labels)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--out", type=Path, required=True, help="folder to write support.csv, test.csv, oos.csv")
    args = parser.parse_args()
    frames = []
    for name in ("train", "test"):
        path = args.folder / f"{name}.csv"
        if not path.is_file():
            parser.error(f"{path} not found")
        frame = common.read_split(args.folder.parent, args.folder.name, name)
        missing = {args.text_column, args.label_column} - set(frame.columns)
        if missing:
            parser.error(f"{path} lacks the column(s) {sorted(missing)}; its columns are {list(frame.columns)}")
        frames.append(frame.rename(columns={args.text_column: "text", args.label_column: "label"})[["text", "label"]])
    support, test, oos = split(*frames, args.known, args.shots, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    support.to_csv(args.out / "support.csv", index=False)
    test.to_csv(args.out / "test.csv", index=False)
    oos[["text"]].to_csv(args.out / "oos.csv", index=False)
    print(f"{args.out}: {len(support)} examples of {args.known} labels, {len(test)} test rows, "
          f"{len(oos)} out-of-scope rows of {oos.label.nunique()} held-out labels", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
