"""Issue 7's targets over many support sets: random K-shot draws from CLINC150 ``train``, not one fixed split.

    python bench/oos_draws.py [--model minilm] [--extra-layers auto|none|N[,N]] [--draws 20] [--data ../shared/data]

``bench/oos.py`` scores the one standard support set per shot count (``train_5`` / ``train_10``); a result
there moves by a few hundredths of recall with the examples drawn. Here each draw takes K examples per
intent from ``train`` (seeded: draw ``i`` of K shots uses seed ``1000 * K + i``), fits the library's
classifier exactly as a user would (``unknown_threshold="auto"``), and scores ``test`` + ``oos_test``.
Reported per shot count: means with their standard errors over the draws, of the no-threshold accuracy,
the automatic threshold's cost in accuracy points and its OOS recall, AUROC, the ceiling (best recall at a
2-point cost, threshold chosen with the test labels: a diagnostic of the score), and the share of draws
in which both targets hold (recall >= 0.80, cost <= 2 points). Writes bench/results/oos_draws.json
(``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from fewshot import FewShotClassifier
from fewshot.cli import parse_layers
from fewshot.encoder import Encoder
from fewshot.metrics import evaluate_oos
from oos import ceiling  # bench/ is on the path as a script

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("accuracy_no_threshold", "cost_points", "oos_recall", "oos_auroc", "ceiling_oos_recall")


def draw(train: pd.DataFrame, shots: int, seed: int) -> pd.DataFrame:
    """``shots`` random examples of every intent in ``train``."""
    return train.groupby("label", group_keys=False).sample(n=shots, random_state=seed)


def one_draw(support: pd.DataFrame, test: pd.DataFrame, oos: pd.DataFrame, model: str, encoder: Encoder
             ) -> dict[str, float]:
    clf = FewShotClassifier(model, encoder=encoder).fit(support.text.tolist(), support.label.tolist())
    plain = float((clf.predict(test.text.tolist()) == test.label.to_numpy(dtype=object)).mean())  # no threshold
    top = ceiling(clf, test, oos)
    res = evaluate_oos(clf, test.text.tolist(), test.label.tolist(), oos.text.tolist())  # "auto": none is set
    return {"accuracy_no_threshold": 100 * plain, "cost_points": 100 * (res["in_scope_accuracy"] - plain),
            "oos_recall": res["oos_recall"], "oos_auroc": res["oos_auroc"], "ceiling_oos_recall": top,
            "threshold": res["threshold"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--extra-layers", type=parse_layers, default="auto",
                        help="as `fewshot --extra-layers`: 'auto' (the default), 'none' or layer numbers like 2,4")
    parser.add_argument("--draws", type=int, default=20, help="random support sets per shot count")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "oos_draws.json"))
    args = parser.parse_args()
    data = Path(args.data) / "clinc150"
    if not data.is_dir():
        print(f"skipped: {data} not found", file=sys.stderr)
        return 0
    train, test, oos = (pd.read_csv(data / f"{s}.csv") for s in ("train", "test", "oos_test"))
    encoder = Encoder(args.model, extra_layers=args.extra_layers)  # one encoder: its cache encodes each text once
    summary = []
    for shots in (5, 10):
        runs = [one_draw(draw(train, shots, 1000 * shots + i), test, oos, args.model, encoder)
                for i in tqdm(range(args.draws), desc=f"{shots}-shot draws", file=sys.stderr)]
        row: dict[str, object] = {"shots": shots, "draws": args.draws, "model": args.model,
                                  "extra_layers": list(encoder.extra_layers)}
        for key in COLUMNS:
            values = np.array([r[key] for r in runs])
            row[key] = {"mean": float(values.mean()), "se": float(values.std(ddof=1) / np.sqrt(len(values))),
                        "min": float(values.min()), "max": float(values.max())}
        row["share_meeting_both"] = float(np.mean([r["cost_points"] >= -2 and r["oos_recall"] >= 0.80 for r in runs]))
        row["runs"] = runs
        summary.append(row)
    Path(args.out).write_text(json.dumps(summary, indent=2))
    print("| shots | draws | accuracy, no threshold | auto: cost (points) | auto: OOS recall | AUROC | "
          "ceiling | draws meeting both |")
    print("|---|---|---|---|---|---|---|---|")
    for r in summary:
        cells = " | ".join(f"{r[k]['mean']:.{d}f} ± {r[k]['se']:.{d}f}" for k, d in zip(COLUMNS, (2, 2, 3, 4, 3)))
        print(f"| {r['shots']} | {r['draws']} | {cells} | {r['share_meeting_both']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
