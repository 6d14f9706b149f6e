"""Out-of-scope detection on CLINC150 with the automatic threshold (no out-of-scope examples given).

    python bench/oos.py [--model minilm] [--data ../shared/data]

Prints a markdown table and writes bench/results/oos.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from fewshot import FewShotClassifier
from fewshot.metrics import evaluate

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "oos.json"))
    args = parser.parse_args()
    data = Path(args.data) / "clinc150"
    if not data.is_dir():
        print(f"skipped: {data} not found", file=sys.stderr)
        return 0
    from fewshot.metrics import evaluate_oos

    test, oos = pd.read_csv(data / "test.csv"), pd.read_csv(data / "oos_test.csv")
    rows = []
    for shots in (5, 10):
        support = pd.read_csv(data / f"train_{shots}.csv")
        clf = FewShotClassifier(args.model).fit(support.text.tolist(), support.label.tolist())
        plain = evaluate(clf, test.text.tolist(), test.label.tolist())["accuracy"]
        clf.config.unknown_threshold = "auto"
        res = evaluate_oos(clf, test.text.tolist(), test.label.tolist(), oos.text.tolist())
        rows.append({"shots": shots, "model": args.model, "accuracy_no_threshold": plain, **res})
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print("| shots | accuracy, no threshold | in-scope accuracy, auto | OOS recall | OOS precision | AUROC |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shots']} | {r['accuracy_no_threshold']:.4f} | {r['in_scope_accuracy']:.4f} | "
              f"{r['oos_recall']:.3f} | {r['oos_precision']:.3f} | {r['oos_auroc']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
