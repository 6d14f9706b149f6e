"""Score additions for issue 7 compared draw for draw: the same random CLINC150 support sets, with and without.

    python bench/oos_draws_variants.py [--draws 20] [--data ../shared/data] [--out bench/results/oos_draws_variants.md]

Single support sets move the ceiling by a few hundredths (``bench/oos_draws.py``), more than most candidate
changes to the score; here each candidate is scored on the same 20 random K-shot draws from CLINC150
``train`` as the library's score, and the paired differences (mean +- standard error over the draws) say
whether a change is real. Features and head as the library's (sentence embedding + layer 4, label names,
``fit_prototype_head``), score the standardised top logit plus ``w x`` a standardised extra term
(standardised with the 5-fold cross-validated support scores, like the threshold ``threshold_for_drop``):

- ``char``: the cosine of character 3-5-gram TF-IDF vectors to the nearest support text (``bench/oos_readouts.py``);
- ``knn2``: the mean cosine of the two nearest support examples (sentence embedding; ``bench/oos_layers.py``);
- ``alpha``: layer 4's weight in the features (1: the library);
- ``idf``: layer 6 pooled with IDF weights from the support texts and label names instead of the mean
  (``bench/oos_readouts.py``; on the standard ``train_K`` splits it met both targets).
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
from oos_layers import ceiling, stratified_folds  # bench/ is on the path as a script
from oos_readouts import encode, idf_of, lexical, pooled, take

ROOT = Path(__file__).resolve().parents[1]
VARIANTS: dict[str, dict] = {  # name -> alpha, extra term, its weight
    "library (top logit)": {}, "+ 0.2 x char": {"aux": ("char",), "w": 0.2},
    "+ 0.2 x knn2": {"aux": ("knn2",), "w": 0.2}, "+ 0.2 x char + 0.2 x knn2": {"aux": ("char", "knn2"), "w": 0.2},
    "layer 4 weighted 0.75": {"alpha": 0.75}, "layer 4 weighted 1.5": {"alpha": 1.5},
    "layer 6 pooled with the support's IDF": {"idf": True}}
METRICS = ("accuracy", "AUROC", "ceiling", "auto cost (points)", "auto recall")


class Sets:
    """CLINC150 ``train`` / ``test`` / ``oos_test`` and the label names: texts, labels, layer 4 and 6 embeddings."""

    def __init__(self, data: Path) -> None:
        model = Encoder("minilm", extra_layers=())._model
        self.frames = {s: pd.read_csv(data / f"{s}.csv") for s in ("train", "test", "oos_test")}
        self.classes = np.array(sorted(set(self.frames["test"].label)))
        index = {c: i for i, c in enumerate(self.classes)}
        self.texts = {s: df.text.astype(str).tolist() for s, df in self.frames.items()}
        self.texts["names"] = [_label_text(c) for c in self.classes]
        self.enc = {s: encode(model, t) for s, t in self.texts.items()}  # token states, for IDF pooling
        self.emb = {s: {6: l2_normalize(np.stack([h.mean(axis=0) for h in enc[1]])).astype(np.float32), 4: enc[2]}
                    for s, enc in self.enc.items()}  # mean-pooled: what the library's encoder gives
        self.y = np.array([index[c] for c in self.frames["train"].label])
        self.gold = np.array([index[c] for c in self.frames["test"].label])


def score_draw(sets: Sets, rows: np.ndarray, alpha: float = 1.0, aux: tuple[str, ...] = (), w: float = 0.0,
               idf: bool = False) -> np.ndarray:
    """METRICS for one support set (``rows`` of ``train``) and one variant."""
    n, y = len(sets.classes), sets.y[rows]
    weights = idf_of([take(sets.enc["train"], rows), sets.enc["names"]]) if idf else None

    def feats(s: str, subset: np.ndarray | None = None) -> np.ndarray:
        if weights is not None:
            return pooled(sets.enc[s] if subset is None else take(sets.enc[s], subset), weights)
        e6, e4 = (sets.emb[s][k] if subset is None else sets.emb[s][k][subset] for k in (6, 4))
        return l2_normalize(np.hstack([e6, alpha * e4])).astype(np.float32)

    x, names, texts = feats("train", rows), feats("names"), [sets.texts["train"][i] for i in rows]
    e6 = sets.emb["train"][6][rows]

    def fit(r: np.ndarray):  # noqa: ANN202 - the library's head
        return fit_prototype_head(np.vstack([x[r], names]), np.concatenate([y[r], np.arange(n)]), n,
                                  temperature=0.1, weight_decay=1e-4, steps=200, center=True)

    def extra(support: np.ndarray, q6: np.ndarray, q_texts: list[str]) -> list[np.ndarray]:
        out = []
        for kind in aux:
            if kind == "knn2":
                out.append(np.sort(q6 @ e6[support].T, axis=1)[:, -2:].mean(axis=1))
            else:
                out.append(lexical(kind, [texts[i] for i in support] + sets.texts["names"], q_texts))
        return out

    fold = stratified_folds(y)
    held, right = np.zeros(len(y)), np.zeros(len(y), dtype=bool)
    held_aux = [np.zeros(len(y)) for _ in aux]
    for f in range(5):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        logits = fit(train).logits(x[test])
        held[test], right[test] = logits.max(1), logits.argmax(1) == y[test]
        for h, a in zip(held_aux, extra(train, e6[test], [texts[i] for i in test])):
            h[test] = a

    def standard(top: np.ndarray, terms: list[np.ndarray]) -> np.ndarray:
        z = (top - held.mean()) / held.std()
        return z + sum(w * (a - h.mean()) / h.std() for a, h in zip(terms, held_aux))

    t = threshold_for_drop(standard(held, held_aux), right, 0.02)
    head, every = fit(np.arange(len(y))), np.arange(len(y))

    def predict(s: str) -> tuple[np.ndarray, np.ndarray]:
        logits = head.logits(feats(s))
        return logits.argmax(1), standard(logits.max(1), extra(every, sets.emb[s][6], sets.texts[s]))

    (l_in, s_in), (_, s_out) = predict("test"), predict("oos_test")
    ok = l_in == sets.gold
    auroc = roc_auc_score(np.r_[np.zeros(len(s_in)), np.ones(len(s_out))], -np.r_[s_in, s_out])
    return np.array([100 * ok.mean(), auroc, ceiling(ok, s_in, s_out),
                     100 * ((ok & (s_in >= t)).mean() - ok.mean()), (s_out < t).mean()])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "oos_draws_variants.md"))
    args = parser.parse_args()
    data = Path(args.data) / "clinc150"
    if not data.is_dir():
        print(f"skipped: {data} not found", file=sys.stderr)
        return 0
    sets = Sets(data)
    lines = ["Means over the draws; in brackets the paired difference from the library's score, mean +- standard "
             "error.", "", "| variant | shots | " + " | ".join(METRICS) + " | draws meeting both |",
             "|---|---|" + "---|" * (len(METRICS) + 1)]
    for shots in (5, 10):
        draws = []
        for i in range(args.draws):
            rng = np.random.default_rng(1000 * shots + i)
            draws.append(np.concatenate([rng.choice(np.flatnonzero(sets.y == c), shots, replace=False)
                                         for c in range(len(sets.classes))]))
        results = {name: np.array([score_draw(sets, rows, **v) for rows in draws]) for name, v in VARIANTS.items()}
        base = results["library (top logit)"]
        for name, res in results.items():
            diff = res - base
            se = diff.std(axis=0, ddof=1) / np.sqrt(len(diff))
            cells = [f"{res[:, j].mean():.{d}f} ({diff[:, j].mean():+.{d}f} ± {se[j]:.{d}f})"
                     for j, d in enumerate((2, 4, 3, 2, 3))]
            meets = int(((res[:, 3] >= -2) & (res[:, 4] >= 0.80)).sum())
            lines.append(f"| {name} | {shots} | " + " | ".join(cells) + f" | {meets} / {len(res)} |")
            print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
