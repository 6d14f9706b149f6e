"""Out-of-scope texts on small label sets (3 or 5 labels, 3 or 5 examples each), as a user's first label set is.

    python bench/oos_small.py [--model minilm] [--split test] [--draws 12] [--data ../shared/data]

Each episode draws ``--labels`` intents of one dataset (HWU64 or CLINC150), ``--shots`` random ``train`` examples
of each, and fits the product's classifier (``auto_unknown=True``). In-scope queries: the ``--split`` rows of those
intents; out-of-scope texts: CLINC150's ``oos_<split>`` queries (texts of no intent of either dataset). Reported
per setting (means over ``--draws`` episodes, standard errors in the JSON):

- ``accuracy``: in-scope accuracy with every text answered with a label;
- AUROC (in-scope against out-of-scope texts) of three scores: ``logit``, the product's in-scope score;
  ``maxcos``, the highest cosine to any example (the encoder's own vectors); ``logit+0.5cos``, the logit plus half
  the highest centred cosine to an example of the predicted label over the temperature (the research notes'
  best re-reading of the logit on large label sets);
- the automatic threshold's out-of-scope recall and cost (points of in-scope accuracy);
- the same with a *similarity floor* on top: a text whose highest cosine to any example is below the cosine that
  ``share`` of the pairs of varied sentences exceed (:func:`fewshot.batch_reading.calibrated_floor` of the encoder's
  vectors of :func:`fewshot.batch_reading.reference_texts`) is answered unknown too, for each ``--floor-shares``.

Writes ``--out`` (default ``bench/results/oos_small.json``, ``oos_small_<model>.json`` for another model) and
prints a markdown table.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py
from common import RESULTS, has_data, parser, read_split, reproducible, write_json  # noqa: E402

SCORES = ("logit", "maxcos", "logit+0.5cos")


def episode(clf_class: Any, encoder: Any, vectors: dict[str, np.ndarray], support: Any, queries: Any,
            oos: list[str], floors: dict[str, float]) -> dict[str, float]:
    """One small label set: accuracy, each score's AUROC, the automatic threshold's and the floors' recall and
    cost."""
    from sklearn.metrics import roc_auc_score

    from fewshot.metrics import NO_UNKNOWN

    clf = clf_class(encoder=encoder, auto_unknown=True).fit(support.text.tolist(), support.label.tolist())
    texts = queries.text.tolist() + oos
    pred, probs, logit = clf.predict_with_scores(texts, **NO_UNKNOWN)
    v = np.stack([vectors[t] for t in texts])
    examples = clf.support.vectors
    maxcos = (v @ examples.T).max(axis=1)
    head = clf._fitted_head
    centred = head.transform(v) @ head.transform(examples).T
    own = np.array([list(clf.classes_).index(lab) for lab in clf.support.labels])
    top = probs.argmax(axis=1)
    cos_top = np.array([centred[i, own == top[i]].max() for i in range(len(texts))])
    scores = {"logit": logit, "maxcos": maxcos, "logit+0.5cos": logit + 0.5 * cos_top / clf.config.temperature}
    n = len(queries)
    inside = np.r_[np.ones(n, bool), np.zeros(len(oos), bool)]
    right = pred[:n] == queries.label.to_numpy(dtype=object)
    out = {"accuracy": float(right.mean())}
    out |= {f"auroc_{name}": float(roc_auc_score(inside, s)) for name, s in scores.items()}
    threshold = clf.auto_threshold_

    def rule(rejected: np.ndarray, name: str) -> None:
        out[f"{name}_recall"] = float(rejected[n:].mean())
        out[f"{name}_cost"] = float(right.mean() - (right & ~rejected[:n]).mean())

    rule(logit < threshold, "auto")
    for share, floor in floors.items():
        rule((logit < threshold) | (maxcos < floor), f"floor{share}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0], out=None)
    p.add_argument("--model", default="minilm", help="minilm (default), default, mpnet, or a folder")
    p.add_argument("--split", default="test", choices=["test", "valid"], help="queries (choose on valid)")
    p.add_argument("--datasets", nargs="+", default=["hwu64", "clinc150"])
    p.add_argument("--labels", type=int, nargs="+", default=[3, 5])
    p.add_argument("--shots", type=int, nargs="+", default=[3, 5])
    p.add_argument("--draws", type=int, default=12)
    p.add_argument("--floor-shares", type=float, nargs="+", default=[0.1, 0.15, 0.2])
    args = p.parse_args(argv)
    if not has_data(args.data, tuple(args.datasets), args.split):
        return 0
    reproducible()
    from fewshot import FewShotClassifier
    from fewshot.encoders.encoder import Encoder
    from fewshot.batch_reading import calibrated_floor, reference_texts

    encoder = Encoder(args.model)
    floors = {s: calibrated_floor(encoder.encode(reference_texts()), s) for s in args.floor_shares}
    print("similarity floors:", {s: round(f, 3) for s, f in floors.items()}, file=sys.stderr)
    oos = read_split(args.data, "clinc150", f"oos_{args.split}").text.tolist()
    rows = []
    for dataset in args.datasets:
        train, queries = read_split(args.data, dataset, "train"), read_split(args.data, dataset, args.split)
        intents = sorted(train.label.unique())
        draws = [(k, shots, d) for k in args.labels for shots in args.shots for d in range(args.draws)]
        picked = {}
        for k, shots, d in draws:
            rng = np.random.default_rng(1000 * k + 10 * shots + d)
            labels = sorted(rng.choice(intents, size=k, replace=False))
            picked[k, shots, d] = (train[train.label.isin(labels)].groupby("label", group_keys=False)
                                   .sample(n=shots, random_state=d), queries[queries.label.isin(labels)])
        needed = list(dict.fromkeys(oos + [t for s, q in picked.values() for t in (*s.text, *q.text)]))
        vectors = dict(zip(needed, encoder.encode(needed)))  # once per dataset; the classifiers encode alike
        for (k, shots, d), (support, asked) in picked.items():
            rows.append({"dataset": dataset, "labels": k, "shots": shots, "draw": d,
                         **episode(FewShotClassifier, encoder, vectors, support, asked, oos, floors)})
        print(f"done: {dataset}", file=sys.stderr, flush=True)
    import pandas as pd

    frame = pd.DataFrame(rows)
    keys = ["dataset", "labels", "shots"]
    means, errors = frame.groupby(keys).mean(numeric_only=True), frame.groupby(keys).sem(numeric_only=True)
    command = "python bench/oos_small.py " + " ".join(argv if argv is not None else sys.argv[1:])
    floor_cols = [f"floor{s}" for s in args.floor_shares]
    print(f"`{command.strip()}` ({args.model}; similarity floors "
          + ", ".join(f"share {s}: {f:.3f}" for s, f in floors.items()) + ")\n")
    print("| dataset | labels × shots | accuracy | AUROC " + " / ".join(SCORES) + " | automatic: recall / cost | "
          + " | ".join(f"+ floor ({c[5:]}): recall / cost" for c in floor_cols) + " |")
    print("|---|---|---|---|---|" + "---|" * len(floor_cols))
    for (dataset, k, shots), m in means.iterrows():
        print(f"| {dataset} | {k} × {shots} | {m['accuracy']:.3f} | "
              + " / ".join(f"{m['auroc_' + s]:.3f}" for s in SCORES)
              + f" | {m['auto_recall']:.3f} / {100 * m['auto_cost']:.1f} | "
              + " | ".join(f"{m[c + '_recall']:.3f} / {100 * m[c + '_cost']:.1f}" for c in floor_cols) + " |")
    out = args.out or (RESULTS / ("oos_small.json" if args.model == "minilm" else
                                  f"oos_small_{Path(args.model).name}.json"))
    write_json(out, {"command": command.strip(), "model": args.model, "split": args.split,
                     "floors": {str(s): f for s, f in floors.items()},
                     "means": means.reset_index().to_dict("records"), "standard_errors": errors.reset_index().to_dict(
                         "records"), "episodes": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
