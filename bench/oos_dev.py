"""Issue 7's choices checked on data other than CLINC150 ``test``: layer 4 appended, and a nearest-example term.

    python bench/oos_dev.py [--data ../shared/data] [--out bench/results/oos_dev.md]

Two development checks, 5 and 10 shots, the library's head (``fit_prototype_head``, label names, temperature
0.1) and in-scope score (its top logit): (a) CLINC150 ``train_K`` support, ``valid`` in-scope texts,
``oos_valid`` + ``oos_train`` out-of-scope; (b) HWU64 with 16 of its 64 intents held out as out-of-scope
(5 random splits, seed 0; support ``train_K`` of the other 48, queries from ``test``), mean of the splits.
Rows: the sentence embedding alone; with the layer-4 mean-pooled state appended (the library's default);
and that plus ``0.2 x`` the standardised mean of the two nearest-example cosines (as in
``bench/oos_layers.py``; standardised with 5-fold cross-validated support scores). Columns: AUROC, and the
ceiling (best out-of-scope recall at a 2-point in-scope cost, threshold chosen with the labels), and what the
library's automatic threshold (``threshold_for_drop`` at 2 %, from the cross-validated support scores alone)
costs in in-scope accuracy points and reaches in recall: how it lands on data other than CLINC150 ``test``
(for HWU64 also per split: with 48 labels x 5 examples the cost varies widely from one label set to the next).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from fewshot.classifier import _label_text, threshold_for_drop
from fewshot.encoder import Encoder
from fewshot.matching import fit_prototype_head, l2_normalize
from oos_layers import ceiling, layer_embeddings, stratified_folds  # bench/ is on the path as a script

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = [("sentence embedding only", False, 0.0), ("+ layer 4 (default)", True, 0.0),
            ("+ layer 4, + 0.2 nearest-example term", True, 0.2)]


def features(emb: dict[int, np.ndarray], layer4: bool) -> np.ndarray:
    return l2_normalize(np.hstack([emb[6], emb[4]])).astype(np.float32) if layer4 else emb[6]


def held_out_intents(labels: np.ndarray, out: int = 16, n: int = 5, seed: int = 0) -> list[np.ndarray]:
    """``n`` random sets of the intents kept in scope (all but ``out`` of them), sorted."""
    classes = np.array(sorted(set(labels)))
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(classes, len(classes) - out, replace=False)) for _ in range(n)]


def check(sup: dict, y: np.ndarray, names: dict, inside: dict, gold: np.ndarray, outside: dict, n: int,
          layer4: bool, w: float) -> tuple[float, float, float, float]:
    """(AUROC, ceiling, automatic threshold's cost in points, its recall) of one support set's score on
    in-scope ``inside`` and out-of-scope ``outside``."""
    x, nm = features(sup, layer4), features(names, layer4)

    def fit(rows: np.ndarray):  # noqa: ANN202 - the library's head
        return fit_prototype_head(np.vstack([x[rows], nm]), np.concatenate([y[rows], np.arange(n)]), n,
                                  temperature=0.1, weight_decay=1e-4, steps=200, center=True)

    def near(q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.sort(q @ sup[6][rows].T, axis=1)[:, -2:].mean(axis=1)

    fold = stratified_folds(y)
    held, held_near, right = np.zeros(len(y)), np.zeros(len(y)), np.zeros(len(y), dtype=bool)
    for f in range(5):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        logits = fit(train).logits(x[test])
        held[test], right[test] = logits.max(axis=1), logits.argmax(axis=1) == y[test]
        held_near[test] = near(sup[6][test], train)
    head, every = fit(np.arange(len(y))), np.arange(len(y))

    def standard(top: np.ndarray, nearest: np.ndarray) -> np.ndarray:
        return (top - held.mean()) / held.std() + w * (nearest - held_near.mean()) / held_near.std()

    def score(emb: dict) -> tuple[np.ndarray, np.ndarray]:
        logits = head.logits(features(emb, layer4))
        return logits.argmax(axis=1), standard(logits.max(axis=1), near(emb[6], every))

    (pred, s_in), (_, s_out) = score(inside), score(outside)
    ok = pred == gold
    auroc = roc_auc_score(np.r_[np.zeros(len(s_in)), np.ones(len(s_out))], -np.r_[s_in, s_out])
    t = threshold_for_drop(standard(held, held_near), right, 0.02)
    cost = 100 * ((ok & (s_in >= t)).mean() - ok.mean())
    return float(auroc), ceiling(ok, s_in, s_out), float(cost), float((s_out < t).mean())


def data_and_out(doc: str, out_name: str) -> tuple[Path, Path] | None:
    """The ``--data`` folder and ``--out`` file of a development-check script (``doc``: its docstring); None,
    having said so, when the data folder lacks CLINC150 or HWU64."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / out_name))
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "clinc150").is_dir() or not (data / "hwu64").is_dir():
        print(f"skipped: {data} lacks clinc150/ or hwu64/", file=sys.stderr)
        return None
    return data, Path(args.out)


def main() -> int:
    paths = data_and_out(__doc__, "oos_dev.md")
    if paths is None:
        return 0
    data, out = paths
    model = Encoder("minilm", extra_layers=())._model

    def load(ds: str, split: str) -> tuple[dict, np.ndarray]:
        df = pd.read_csv(data / ds / f"{split}.csv")
        return layer_embeddings(model, df.text.astype(str).tolist()), df.label.astype(str).to_numpy()

    def take(emb: dict, rows: np.ndarray) -> dict:
        return {k: v[rows] for k, v in emb.items()}

    lines = ["| variant | shots | CLINC150 valid: AUROC | ceiling | auto: cost / recall "
             "| HWU64, 16 intents held out: AUROC | ceiling | auto: cost / recall | auto: cost per split |",
             "|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    clinc_in, clinc_labels = load("clinc150", "valid")
    oos = [load("clinc150", s)[0] for s in ("oos_valid", "oos_train")]
    clinc_out = {k: np.vstack([o[k] for o in oos]) for k in oos[0]}
    hwu_test, hwu_test_labels = load("hwu64", "test")
    classes = np.array(sorted(set(clinc_labels)))
    index = {c: i for i, c in enumerate(classes)}
    names = layer_embeddings(model, [_label_text(c) for c in classes])
    splits = held_out_intents(hwu_test_labels)
    split_names = [layer_embeddings(model, [_label_text(c) for c in kept]) for kept in splits]
    for shots in (5, 10):
        sets = {ds: load(ds, f"train_{shots}") for ds in ("clinc150", "hwu64")}
        for name, layer4, w in VARIANTS:
            clinc = check(sets["clinc150"][0], np.array([index[c] for c in sets["clinc150"][1]]), names,
                          clinc_in, np.array([index[c] for c in clinc_labels]), clinc_out, len(classes), layer4, w)
            runs = []
            for kept, kept_names in zip(splits, split_names):
                at = {c: i for i, c in enumerate(kept)}
                s_rows = np.flatnonzero(np.isin(sets["hwu64"][1], kept))
                q_in = np.flatnonzero(np.isin(hwu_test_labels, kept))
                q_out = np.flatnonzero(~np.isin(hwu_test_labels, kept))
                runs.append(check(take(sets["hwu64"][0], s_rows), np.array([at[c] for c in sets["hwu64"][1][s_rows]]),
                                  kept_names, take(hwu_test, q_in), np.array([at[c] for c in hwu_test_labels[q_in]]),
                                  take(hwu_test, q_out), len(kept), layer4, w))
            hwu = np.mean(runs, axis=0)
            lines.append(f"| {name} | {shots} | {clinc[0]:.4f} | {clinc[1]:.3f} | {clinc[2]:+.2f} / {clinc[3]:.3f} "
                         f"| {hwu[0]:.4f} | {hwu[1]:.3f} | {hwu[2]:+.2f} / {hwu[3]:.3f} "
                         f"| {' '.join(f'{r[2]:+.1f}' for r in runs)} |")
            print(lines[-1], flush=True)
    out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
