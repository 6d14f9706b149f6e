"""Issue 7's other candidates, none adopted: other read-outs of the head, a lexical term, other threshold estimators.

    python bench/oos_readouts.py [--data ../shared/data] [--out bench/results/oos_readouts.md]

The three checks of ``bench/oos_dev.py`` plus the target: CLINC150 ``test`` + ``oos_test``, CLINC150 ``valid`` +
``oos_valid`` + ``oos_train``, and HWU64 with 16 of its 64 intents held out (5 random splits, mean), 5 and 10
shots, on the library's features (sentence embedding + layer 4) and head (``fit_prototype_head``, label
names, temperature 0.1). Every variant is scored as the library scores its own: AUROC, the ceiling (best
recall at a 2-point cost, threshold chosen with the labels), and a threshold from the 5-fold cross-validated
support scores alone (its in-scope cost in points / its recall). Variants:

- read-outs of the fitted head: the top logit (the library), the logits averaged with the five
  cross-validation heads', the cosine to each label's weight vector, the top logit's z-score among the row's
  logits, its gap to the mean of the next ten;
- the head pulled 10, 100, 1,000 x harder to its prototype initialisation (``weight_decay``);
- layer 6 pooled with IDF weights instead of the mean, so that rare, content-bearing tokens weigh more (its
  top logit and the library's threshold): IDF (smoothed) from the support texts and label names, or fixed,
  from the other dataset's texts (HWU64 ``train_K`` + ``test`` for CLINC150, CLINC150 ``train_K`` + ``valid``
  + ``test`` for HWU64);
- a lexical term: ``w x`` the standardised cosine of character 3-5-gram (or word) TF-IDF vectors to the
  nearest example (fitted on the support texts and label names) added to the standardised top logit;
- threshold estimators on the top logit's held-out scores: the library's ``threshold_for_drop`` (empirical),
  the Harrell-Davis quantile, a normal fit, a kernel-smoothed cost (Silverman's bandwidth, 1x and 2x).

Rows were looked at with the ``test`` numbers in view; none gained on both development checks (README).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.optimize import brentq
from scipy.stats import norm
from scipy.stats.mstats import hdquantiles
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import roc_auc_score

from fewshot.classifier import _label_text, threshold_for_drop
from fewshot.encoder import Encoder
from fewshot.matching import LinearHead, fit_prototype_head, l2_normalize
from oos_dev import data_and_out, features, held_out_intents  # bench/ is on the path as a script
from oos_layers import ceiling, stratified_folds

ROOT = Path(__file__).resolve().parents[1]
Texts = list[str]
IDF_ROWS = {"support": "layer 6 pooled with the support's IDF weights, top logit",
            "cross": "layer 6 pooled with the other dataset's IDF weights, top logit"}


def q_right(held: np.ndarray, right: np.ndarray) -> float:
    """The share of the right ones' scores that a 2 % cost rejects."""
    return 0.02 * len(held) / right.sum()


def kde_threshold(held: np.ndarray, right: np.ndarray, scale: float) -> float:
    """Where a Gaussian-kernel-smoothed share of right-and-below reaches 2 % (Silverman's bandwidth x scale)."""
    x = held[right]
    bw = scale * 0.9 * min(x.std(ddof=1), np.subtract(*np.percentile(x, [75, 25])) / 1.34) * len(x) ** -0.2
    return brentq(lambda t: norm.cdf((t - x) / bw).sum() / len(held) - 0.02, x.min() - 10 * bw, x.max() + 10 * bw)


ESTIMATORS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "Harrell-Davis quantile": lambda h, r: float(hdquantiles(h[r], prob=[q_right(h, r)])[0]),
    "normal fit": lambda h, r: float(h[r].mean() + h[r].std(ddof=1) * norm.ppf(q_right(h, r))),
    "kernel-smoothed cost": lambda h, r: kde_threshold(h, r, 1.0),
    "kernel-smoothed cost, 2x bandwidth": lambda h, r: kde_threshold(h, r, 2.0),
}


def readouts(head: LinearHead, x: np.ndarray, cv_heads: list[LinearHead]) -> dict[str, np.ndarray]:
    logits = head.logits(x)
    rows = np.sort(logits, axis=1)
    weights = head.weight / np.linalg.norm(head.weight, axis=1, keepdims=True)
    return {"top logit (library)": logits.max(1),
            "logits averaged with the 5 CV heads": np.mean([h.logits(x) for h in cv_heads] + [logits], 0).max(1),
            "cosine to the label's weight vector": (head.transform(x) @ weights.T).max(1),
            "z-score of the top logit in its row": (rows[:, -1] - rows[:, :-1].mean(1)) / rows[:, :-1].std(1),
            "gap to the mean of the next ten logits": rows[:, -1] - rows[:, -11:-1].mean(1)}


def lexical(kind: str, support: Texts, queries: Texts) -> np.ndarray:
    """Cosine of TF-IDF vectors to the nearest support text."""
    vec = (TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(3, 5)) if kind == "char"
           else TfidfVectorizer(sublinear_tf=True))
    s = vec.fit_transform(support)
    return (vec.transform(queries) @ s.T).toarray().max(1)


def check(x: np.ndarray, y: np.ndarray, names: np.ndarray, name_texts: Texts, texts: Texts,
          q_in: np.ndarray, q_in_texts: Texts, gold: np.ndarray, q_out: np.ndarray, q_out_texts: Texts,
          every: bool = True) -> dict[str, tuple[float, float, float, float]]:
    """Variant -> (AUROC, ceiling, auto cost in points, auto recall) for one support set and its queries
    (``every=False``: the library's top logit only)."""
    n, fold, texts_a = len(names), stratified_folds(y), np.array(texts, dtype=object)

    def fit(rows: np.ndarray, wd: float = 1e-4) -> LinearHead:
        return fit_prototype_head(np.vstack([x[rows], names]), np.concatenate([y[rows], np.arange(n)]), n,
                                  temperature=0.1, weight_decay=wd, steps=200, center=True)

    def cv(wd: float) -> tuple[list[LinearHead], dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
        heads, held, right, lex = [], {}, np.zeros(len(y), dtype=bool), {"char": np.zeros(len(y)), "word": np.zeros(len(y))}
        for f in range(5):
            train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
            heads.append(fit(train, wd))
            for name, s in readouts(heads[-1], x[test], [heads[-1]]).items():
                held.setdefault(name, np.zeros(len(y)))[test] = s
            right[test] = heads[-1].logits(x[test]).argmax(1) == y[test]
            for kind in lex:
                lex[kind][test] = lexical(kind, list(texts_a[train]) + name_texts, list(texts_a[test]))
        return heads, held, right, lex

    def result(ok: np.ndarray, s_in: np.ndarray, s_out: np.ndarray, t: float) -> tuple[float, float, float, float]:
        auroc = roc_auc_score(np.r_[np.zeros(len(s_in)), np.ones(len(s_out))], -np.r_[s_in, s_out])
        return (float(auroc), ceiling(ok, s_in, s_out), 100 * float((ok & (s_in >= t)).mean() - ok.mean()),
                float((s_out < t).mean()))

    heads, held, right, lex = cv(1e-4)
    head = fit(np.arange(len(y)))
    ok = head.logits(q_in).argmax(1) == gold
    s_in, s_out = readouts(head, q_in, heads), readouts(head, q_out, heads)
    top = "top logit (library)"
    if not every:
        return {top: result(ok, s_in[top], s_out[top], threshold_for_drop(held[top], right, 0.02))}
    out = {}
    for name in s_in:  # the CV held-out scores of the averaged read-out: each CV head alone (the best proxy)
        out[name] = result(ok, s_in[name], s_out[name], threshold_for_drop(held[name], right, 0.02))
    for name, estimate in ESTIMATORS.items():
        out[f"threshold: {name}"] = result(ok, s_in[top], s_out[top], estimate(held[top], right))
    z = (held[top] - held[top].mean()) / held[top].std()
    for kind in ("char", "word"):
        l_in, l_out = (lexical(kind, texts + name_texts, q) for q in (q_in_texts, q_out_texts))
        mu, sd = lex[kind].mean(), lex[kind].std()
        for w in (0.1, 0.2, 0.5):
            z_in, z_out = ((s[top] - held[top].mean()) / held[top].std() for s in (s_in, s_out))
            t = threshold_for_drop(z + w * (lex[kind] - mu) / sd, right, 0.02)
            out[f"+ {w} x {kind} TF-IDF nearest-example cosine"] = result(
                ok, z_in + w * (l_in - mu) / sd, z_out + w * (l_out - mu) / sd, t)
    for factor in (10, 100, 1000):
        wd_heads, wd_held, wd_right, _ = cv(1e-4 * factor)
        wd_head = fit(np.arange(len(y)), 1e-4 * factor)
        logits_in = wd_head.logits(q_in)
        out[f"head pulled {factor}x harder to the prototypes"] = result(
            logits_in.argmax(1) == gold, logits_in.max(1), wd_head.logits(q_out).max(1),
            threshold_for_drop(wd_held[top], wd_right, 0.02))
    return out


@torch.inference_mode()
def encode(model: object, texts: Texts, batch: int = 128) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Per text: its token ids and layer-6 token states; and the unit mean-pooled layer-4 states (n, d)."""
    bert, tokenizer = model[0].auto_model, model.tokenizer
    ids: list[np.ndarray] = [np.empty(0)] * len(texts)
    states: list[np.ndarray] = [np.empty(0)] * len(texts)
    e4 = np.zeros((len(texts), bert.config.hidden_size), np.float32)
    order = np.argsort([len(t) for t in texts])
    for start in range(0, len(texts), batch):
        idx = order[start:start + batch]
        inputs = tokenizer([texts[j] for j in idx], padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = bert(**inputs, output_hidden_states=True).hidden_states
        mask = inputs["attention_mask"][..., None].float()
        e4[idx] = torch.nn.functional.normalize((hidden[4] * mask).sum(1) / mask.sum(1), dim=-1).numpy()
        for row, j in enumerate(idx):
            n = int(inputs["attention_mask"][row].sum())
            ids[j], states[j] = inputs["input_ids"][row, :n].numpy(), hidden[6][row, :n].numpy()
    return ids, states, e4


Encoded = tuple[list[np.ndarray], list[np.ndarray], np.ndarray]


def take(enc: Encoded, rows: np.ndarray) -> Encoded:
    """The ``rows`` of an :func:`encode` result."""
    return [enc[0][i] for i in rows], [enc[1][i] for i in rows], enc[2][rows]


def pooled(enc: Encoded, idf: dict[int, float] | None) -> np.ndarray:
    """``l2norm([layer 6 pooled, layer 4 mean-pooled])``: layer 6 mean-pooled (the library) or IDF-weighted."""
    ids, states, e4 = enc
    e6 = np.zeros_like(e4)
    for j, (tok, h) in enumerate(zip(ids, states)):
        w = np.ones(len(tok)) if idf is None else np.array([idf.get(int(t), idf[-1]) for t in tok])
        e6[j] = (w[:, None] * h).sum(0) / w.sum()
    return features({6: l2_normalize(e6), 4: e4}, True)


def idf_of(encs: list[Encoded]) -> dict[int, float]:
    """Smoothed inverse document frequency of each token id over the given texts (key -1: an unseen id)."""
    docs = [set(t.tolist()) for enc in encs for t in enc[0]]
    counts: dict[int, int] = {}
    for d in docs:
        for t in d:
            counts[t] = counts.get(t, 0) + 1
    idf = {t: float(np.log((len(docs) + 1) / (c + 1)) + 1) for t, c in counts.items()}
    idf[-1] = float(np.log(len(docs) + 1) + 1)
    return idf


def main() -> int:
    paths = data_and_out(__doc__, "oos_readouts.md")
    if paths is None:
        return 0
    data, out = paths
    model = Encoder("minilm", extra_layers=())._model

    def load(ds: str, *splits: str) -> tuple[Encoded, Texts, np.ndarray]:
        df = pd.concat([pd.read_csv(data / ds / f"{s}.csv") for s in splits], ignore_index=True)
        texts = df.text.astype(str).tolist()
        return encode(model, texts), texts, df.label.astype(str).to_numpy()

    clinc = {"test": load("clinc150", "test"), "oos_test": load("clinc150", "oos_test"),
             "valid": load("clinc150", "valid"), "oos_valid": load("clinc150", "oos_valid", "oos_train")}
    classes = np.array(sorted(set(clinc["valid"][2])))
    index = {c: i for i, c in enumerate(classes)}
    name_texts = [_label_text(c) for c in classes]
    clinc_names = encode(model, name_texts)
    hwu_test = load("hwu64", "test")
    hwu_classes = np.array(sorted(set(hwu_test[2])))
    hwu_names = encode(model, [_label_text(c) for c in hwu_classes])
    splits = held_out_intents(hwu_test[2])
    results: dict[str, dict[str, np.ndarray]] = {}
    for shots in (5, 10):
        sup, texts, labels = load("clinc150", f"train_{shots}")
        hsup, htexts, hlabels = load("hwu64", f"train_{shots}")
        y = np.array([index[c] for c in labels])
        cross = {"clinc150": idf_of([hsup, hwu_test[0]]), "hwu64": idf_of([sup, clinc["valid"][0], clinc["test"][0]])}
        for pooling in ("mean", "support", "cross"):
            def f(enc: Encoded, idf: dict[int, float] | None) -> np.ndarray:
                return pooled(enc, None if pooling == "mean" else idf)
            idf = cross["clinc150"] if pooling == "cross" else idf_of([sup, clinc_names])
            every = pooling == "mean"
            row = IDF_ROWS.get(pooling, "")
            for target, (q_in, q_out) in {"CLINC150 test": ("test", "oos_test"),
                                          "CLINC150 valid": ("valid", "oos_valid")}.items():
                gold = np.array([index[c] for c in clinc[q_in][2]])
                res = check(f(sup, idf), y, f(clinc_names, idf), name_texts, texts, f(clinc[q_in][0], idf),
                            clinc[q_in][1], gold, f(clinc[q_out][0], idf), clinc[q_out][1], every)
                for name, values in res.items():
                    results.setdefault(row or name, {})[f"{target}, {shots}"] = np.array(values)
            runs = []
            for kept in splits:
                at = {c: i for i, c in enumerate(kept)}
                s_rows, q_in = np.flatnonzero(np.isin(hlabels, kept)), np.isin(hwu_test[2], kept)
                kept_sup, kept_names = take(hsup, s_rows), take(hwu_names, np.flatnonzero(np.isin(hwu_classes, kept)))
                idf = cross["hwu64"] if pooling == "cross" else idf_of([kept_sup, kept_names])
                runs.append(check(f(kept_sup, idf), np.array([at[c] for c in hlabels[s_rows]]), f(kept_names, idf),
                                  [_label_text(c) for c in kept], [htexts[i] for i in s_rows],
                                  f(take(hwu_test[0], np.flatnonzero(q_in)), idf),
                                  list(np.array(hwu_test[1], dtype=object)[q_in]),
                                  np.array([at[c] for c in hwu_test[2][q_in]]),
                                  f(take(hwu_test[0], np.flatnonzero(~q_in)), idf),
                                  list(np.array(hwu_test[1], dtype=object)[~q_in]), every))
            for name in runs[0]:
                results[row or name][f"HWU64 held out, {shots}"] = np.mean(
                    [r[name] for r in runs], axis=0)
        print(f"{shots} shots done", file=sys.stderr, flush=True)
    columns = list(next(iter(results.values())))
    lines = ["Each cell: AUROC / ceiling / automatic threshold's cost in points / its recall.", "",
             "| variant | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, cells in results.items():
        lines.append(f"| {name} | " + " | ".join(
            f"{a:.4f} / {c:.3f} / {d:+.2f} / {r:.3f}" for a, c, d, r in (cells[k] for k in columns)) + " |")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
