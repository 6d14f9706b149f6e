"""Experiment for issue 7 (the record of how layer 4 was found): a better in-scope score from two encoder layers.

    python bench/oos_layers.py [--data ../shared/data] [--out bench/results/oos_layers.md]

Features: ``l2norm([e6, alpha * e4])``, where ``e_k`` is the L2-normalised mean-pooled hidden state after
MiniLM layer ``k`` (``e6`` is the usual sentence embedding; one forward pass gives both). Head: the library's
``fit_prototype_head`` on the support plus label names (temperature 0.1, as the classifier). Score:
``z(top logit) + w * z(aux)``, ``aux`` the nearest-example cosine (``cos1``) or the mean of the top two
(``knn2``) on ``e6``, each standardised by the 5-fold cross-validated held-out support scores. Thresholds,
from the support alone: the library's 5 % quantile of held-out scores, and a "drop-targeted" one: the
largest ``t`` with at most 2 % of held-out support examples both classified right and scored below ``t``.
CLINC150 ``train_5`` / ``train_10`` supports, scored on ``test`` + ``oos_test``. ``P(meets)``: the share of
500 bootstrap resamples of the test texts in which both targets (recall >= 0.80, drop <= 2 points) hold.
The candidates' settings (w = 0.2, knn2, layer 4) were picked while looking at test numbers; alpha 0.75
was picked on HWU64 alone (16 held-out intents as out-of-scope). Prints a markdown table, writes ``--out``.
The library adopted layer 4 (``Encoder(extra_layers="auto")``) after ``bench/oos_dev.py`` confirmed it on data
other than ``test``; not the nearest-example term, which that check did not confirm.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from fewshot.classifier import _label_text
from fewshot.encoder import Encoder
from fewshot.matching import fit_prototype_head

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = [  # name, alpha (weight of layer 4; 0: the usual embedding), w (aux weight), aux kind
    ("baseline head", 0.0, 0.0, "cos1"), ("cat6+4 head", 1.0, 0.0, "cos1"),
    ("cat6+4 head + 0.2 cos1", 1.0, 0.2, "cos1"), ("cat6+4 head + 0.2 knn2", 1.0, 0.2, "knn2"),
    ("cat6+4 (alpha 0.75, chosen on HWU64) head", 0.75, 0.0, "cos1")]


@torch.inference_mode()
def layer_embeddings(model: object, texts: list[str], layers: tuple[int, ...] = (4, 6), batch: int = 128
                     ) -> dict[int, np.ndarray]:
    """Unit mean-pooled hidden states after each of ``layers`` (layer 6 of MiniLM: its sentence embedding)."""
    bert, tokenizer = model[0].auto_model, model.tokenizer
    out = {k: np.zeros((len(texts), bert.config.hidden_size), np.float32) for k in layers}
    order = np.argsort([len(t) for t in texts])
    for start in range(0, len(texts), batch):
        idx = order[start:start + batch]
        inputs = tokenizer([texts[j] for j in idx], padding=True, truncation=True, max_length=256,
                           return_tensors="pt")
        states = bert(**inputs, output_hidden_states=True).hidden_states
        mask = inputs["attention_mask"][..., None].float()
        for k in layers:
            out[k][idx] = torch.nn.functional.normalize((states[k] * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    return out


def features(emb: dict[int, np.ndarray], alpha: float) -> np.ndarray:
    if not alpha:
        return emb[6]
    x = np.hstack([emb[6], alpha * emb[4]])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def fit(x: np.ndarray, y: np.ndarray, names: np.ndarray) -> object:
    return fit_prototype_head(np.vstack([x, names]), np.concatenate([y, np.arange(len(names))]), len(names),
                              temperature=0.1, weight_decay=1e-4, steps=200, center=True)


def aux_score(kind: str, queries: np.ndarray, support: np.ndarray) -> np.ndarray:
    sims = queries @ support.T
    return sims.max(axis=1) if kind == "cos1" else np.sort(sims, axis=1)[:, -2:].mean(axis=1)


def stratified_folds(y: np.ndarray, k: int = 5) -> np.ndarray:
    """Fold number per row, each label's rows spread over ``k`` folds (the folds of
    ``FewShotClassifier._cross_validated_scores``: seed 0, a permutation per label)."""
    rng, fold = np.random.default_rng(0), np.full(len(y), -1)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        fold[rows] = rng.permutation(len(rows)) % k
    return fold


def ceiling(ok: np.ndarray, s_in: np.ndarray, s_oos: np.ndarray, drop: float = 0.02) -> float:
    """Best out-of-scope recall of any threshold costing at most ``drop`` of in-scope accuracy (chosen with the
    labels: the diagnostic of bench/oos.py, not an achievable result)."""
    best = 0.0
    for t in np.unique(s_in):
        if (ok & (s_in >= t)).mean() < ok.mean() - drop:
            break
        best = float((s_oos < t).mean())
    return best


def run(sup: dict[int, np.ndarray], names: dict[int, np.ndarray], y: np.ndarray,
        queries: dict[str, dict[int, np.ndarray]], alpha: float, w: float, kind: str
        ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], float, float, float]:
    """Predictions and scores per query set, the drop-targeted and 5 % thresholds, and the fit time."""
    start = time.perf_counter()
    x, n = features(sup, alpha), features(names, alpha)
    fold = stratified_folds(y)
    held, right, held_aux = np.zeros(len(y)), np.zeros(len(y), bool), np.zeros(len(y))
    for f in range(5):
        train, test = fold != f, fold == f
        logits = fit(x[train], y[train], n).logits(x[test])
        held[test], right[test] = logits.max(1), logits.argmax(1) == y[test]
        held_aux[test] = aux_score(kind, sup[6][test], sup[6][train])
    head = fit(x, y, n)

    def score(top: np.ndarray, aux: np.ndarray) -> np.ndarray:
        return (top - held.mean()) / held.std() + w * (aux - held_aux.mean()) / held_aux.std()

    s_held = score(held, held_aux)
    drop_t = -np.inf
    for t in np.sort(s_held):
        if (right & (s_held < t)).mean() > 0.02:
            break
        drop_t = t
    seconds = time.perf_counter() - start
    out = {}
    for name, emb in queries.items():
        logits = head.logits(features(emb, alpha))
        out[name] = (logits.argmax(1), score(logits.max(1), aux_score(kind, emb[6], sup[6])))
    return out, float(drop_t), float(np.quantile(s_held, 0.05)), seconds


def row(name: str, shots: int, out: dict[str, tuple[np.ndarray, np.ndarray]], gold: np.ndarray, t: float) -> str:
    (pred, s_in), (_, s_oos) = out["test"], out["oos_test"]
    ok = pred == gold
    plain, acc, recall = ok.mean(), (ok & (s_in >= t)).mean(), (s_oos < t).mean()
    auroc = roc_auc_score(np.r_[np.zeros(len(s_in)), np.ones(len(s_oos))], -np.r_[s_in, s_oos])
    top = ceiling(ok, s_in, s_oos)
    rng, hits = np.random.default_rng(0), 0
    for _ in range(500):
        a, b = rng.integers(0, len(s_in), len(s_in)), rng.integers(0, len(s_oos), len(s_oos))
        hits += ((ok[a] & (s_in[a] >= t)).mean() - ok[a].mean() >= -0.02) and ((s_oos[b] < t).mean() >= 0.80)
    return (f"| {name} | {shots} | {100 * plain:.2f} | {top:.3f} | {auroc:.4f} | {100 * acc:.2f} | "
            f"{100 * (acc - plain):+.2f} | {recall:.3f} | {hits / 500:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "oos_layers.md"))
    args = parser.parse_args()
    data = Path(args.data) / "clinc150"
    if not data.is_dir():
        print(f"skipped: {data} not found", file=sys.stderr)
        return 0
    frames = {n: pd.read_csv(data / f"{n}.csv") for n in ("train_5", "train_10", "test", "oos_test")}
    classes = np.array(sorted(set(frames["train_10"].label)))
    index = {c: i for i, c in enumerate(classes)}
    model = Encoder("minilm")._model
    emb = {n: layer_embeddings(model, df.text.astype(str).tolist()) for n, df in frames.items()}
    names = layer_embeddings(model, [_label_text(c) for c in classes])
    gold = np.array([index[c] for c in frames["test"].label])
    lines = ["| candidate | shots | accuracy, no threshold | ceiling at -2 points | AUROC | in-scope accuracy, auto | "
             "drop | OOS recall | P(meets), bootstrap |", "|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for shots in (5, 10):
        y = np.array([index[c] for c in frames[f"train_{shots}"].label])
        queries = {"test": emb["test"], "oos_test": emb["oos_test"]}
        for name, alpha, w, kind in CANDIDATES:
            out, drop_t, q05_t, seconds = run(emb[f"train_{shots}"], names, y, queries, alpha, w, kind)
            for label, t in ((f"{name}, 5 % quantile", q05_t), (f"{name}, drop-targeted 2 % ({seconds:.1f} s)", drop_t)):
                lines.append(row(label, shots, out, gold, t))
                print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
