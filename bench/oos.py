"""Out-of-scope detection on CLINC150 with the automatic threshold: the standard supports, then random draws.

    python bench/oos.py [--model minilm] [--extra-layers auto|none|N[,N]] [--none 0 20] [--data ../shared/data]
    python bench/oos.py --draws 20 [--skip-standard]     # also (or only) the random support sets
    python bench/oos.py --model mpnet --draws 20         # the accurate tier -> oos_mpnet.json, oos_draws_mpnet.json

1. Standard supports (``train_5`` / ``train_10``), scored on ``test`` + ``oos_test``; ``--none N`` adds N
   "none of these" examples (label ``unknown``) drawn from ``oos_train`` (seed 0). Writes ``--out``
   (default ``bench/results/oos.json``; ``oos_<model>.json`` for another ``--model`` than ``minilm``).
2. ``--draws N`` random support sets per shot count (K examples per intent from ``train``; draw ``i`` of K
   shots uses seed ``1000 * K + i``): means with standard errors over the draws, and the share of draws in
   which both targets hold. A result on one fixed support set moves by a few hundredths of recall with the
   examples drawn; the draws show by how much. Writes ``--draws-out`` (default
   ``bench/results/oos_draws.json``, ``oos_draws_<model>.json`` for another model); without ``--draws`` this
   part is skipped.

Texts are encoded once and kept in the embedding cache of :mod:`fewshot.meta.data` (``$FEWSHOT_CACHE``),
the classifiers fed from it (:class:`fewshot.meta.data.CachedEncoder`; the same vectors bitwise), so a
rerun or an mpnet run's 20 draws over ``train`` do not encode again.

Every classifier is fitted as a user would (``auto_unknown=True``, the automatic in-scope-score threshold).
Columns: accuracy with no threshold; the threshold's cost in accuracy points; OOS recall / precision;
AUROC of the in-scope score; ``ceiling``, a diagnostic, not a result: the best OOS recall any threshold on the
same score reaches while in-scope accuracy stays within 2 points of the no-threshold accuracy, found with
the test labels (below 0.80 the score itself, not the threshold's placement, limits recall); ``P(meets)``:
the share of 1,000 bootstrap resamples of the test texts (in-scope and out-of-scope resampled separately) in
which both targets hold (recall >= 0.80, in-scope accuracy at most 2 points below the no-threshold accuracy)
at the same automatic threshold.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py
from common import (  # noqa: E402
    RESULTS,
    draw_support,
    embed_once,
    has_data,
    parser,
    read_split,
    reproducible,
    write_json,
)

COLUMNS = ("accuracy_no_threshold", "cost_points", "oos_recall", "oos_auroc", "ceiling_oos_recall")


def score_ceiling(ok: np.ndarray, s_in: np.ndarray, s_oos: np.ndarray, drop: float = 0.02) -> float:
    """Best out-of-scope recall of any threshold costing at most ``drop`` of in-scope accuracy, given which
    in-scope texts are classified right (``ok``) and the in-scope scores of both sets."""
    best = 0.0
    for t in np.unique(s_in):
        if (ok & (s_in >= t)).mean() < ok.mean() - drop:
            break
        best = float((s_oos < t).mean())
    return best


def no_threshold(clf: Any, test: Any, oos: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which test texts are classified right with no threshold, and the in-scope scores of test and OOS texts."""
    from fewshot.metrics import NO_UNKNOWN

    labels, _, in_scores = clf.predict_with_scores(test.text.tolist(), **NO_UNKNOWN)
    _, _, oos_scores = clf.predict_with_scores(oos.text.tolist(), **NO_UNKNOWN)
    return labels == test.label.to_numpy(dtype=object), in_scores, oos_scores


def ceiling(clf: Any, test: Any, oos: Any, drop: float = 0.02) -> float:
    """Best OOS recall of any threshold on the in-scope score at most ``drop`` below the no-threshold
    accuracy (chosen with the test labels: a diagnostic of the score, not an achievable result)."""
    return score_ceiling(*no_threshold(clf, test, oos), drop)


def p_meets(clf: Any, test: Any, oos: Any, rounds: int = 1000) -> float:
    """Share of bootstrap resamples in which recall >= 0.80 and the threshold costs <= 2 points (see above)."""
    correct, in_scores, oos_scores = no_threshold(clf, test, oos)
    t = clf.auto_threshold_
    kept, rejected = correct & (in_scores >= t), oos_scores < t
    rng, hits = np.random.default_rng(0), 0
    for _ in range(rounds):
        a, b = rng.integers(0, len(correct), len(correct)), rng.integers(0, len(rejected), len(rejected))
        hits += bool(kept[a].mean() >= correct[a].mean() - 0.02 and rejected[b].mean() >= 0.80)
    return hits / rounds


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def standard_supports(args: Any, encoder: Any, test: Any, oos: Any) -> list[dict[str, Any]]:
    """Part 1: the standard ``train_5`` / ``train_10`` supports, with and without "none of these" examples."""
    from fewshot import FewShotClassifier
    from fewshot.metrics import evaluate, evaluate_oos

    none_pool = read_split(args.data, "clinc150", "oos_train").text.sample(frac=1.0, random_state=0).tolist()
    rows = []
    for shots in (5, 10):
        support = read_split(args.data, "clinc150", f"train_{shots}")
        for n_none in args.none:
            texts = support.text.tolist() + none_pool[:n_none]
            labels = support.label.tolist() + ["unknown"] * n_none
            clf = FewShotClassifier(args.model, encoder=encoder, auto_unknown=True).fit(texts, labels)
            plain = evaluate(clf, test.text.tolist(), test.label.tolist(), unknown=False)["accuracy"]
            top = ceiling(clf, test, oos) if n_none == 0 else None
            res = evaluate_oos(clf, test.text.tolist(), test.label.tolist(), oos.text.tolist())
            rows.append({"shots": shots, "none_examples": n_none, "model": args.model,
                         "extra_layers": list(encoder.extra_layers), "accuracy_no_threshold": plain, **res,
                         "ceiling_oos_recall": top, "p_meets": p_meets(clf, test, oos) if n_none == 0 else None})
            print(f"done: {shots}-shot, {n_none} none-of-these examples", file=sys.stderr, flush=True)
    print("| shots | none-of-these examples | accuracy, no threshold | in-scope accuracy, auto | OOS recall | "
          "OOS precision | AUROC | ceiling: best recall at -2 points | P(meets) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shots']} | {r['none_examples']} | {r['accuracy_no_threshold']:.4f} | "
              f"{r['in_scope_accuracy']:.4f} | {r['oos_recall']:.3f} | {r['oos_precision']:.3f} | "
              f"{r['oos_auroc']:.4f} | {_fmt(r['ceiling_oos_recall'])} | {_fmt(r['p_meets'])} |")
    return rows


def one_draw(support: Any, test: Any, oos: Any, model: str, encoder: Any) -> dict[str, float]:
    """One random support set, fitted as a user would, scored on ``test`` + ``oos``."""
    from fewshot import FewShotClassifier
    from fewshot.metrics import evaluate_oos

    clf = FewShotClassifier(model, encoder=encoder, auto_unknown=True).fit(support.text.tolist(),
                                                                           support.label.tolist())
    correct, in_scores, oos_scores = no_threshold(clf, test, oos)
    plain = float(correct.mean())
    res = evaluate_oos(clf, test.text.tolist(), test.label.tolist(), oos.text.tolist())
    return {"accuracy_no_threshold": 100 * plain, "cost_points": 100 * (res["in_scope_accuracy"] - plain),
            "oos_recall": res["oos_recall"], "oos_auroc": res["oos_auroc"],
            "ceiling_oos_recall": score_ceiling(correct, in_scores, oos_scores), "threshold": res["threshold"]}


def random_draws(args: Any, encoder: Any, test: Any, oos: Any) -> list[dict[str, Any]]:
    """Part 2: ``args.draws`` random support sets per shot count, summarised."""
    from tqdm import tqdm

    train = read_split(args.data, "clinc150", "train")
    summary = []
    for shots in (5, 10):
        runs = [one_draw(draw_support(train, shots, 1000 * shots + i), test, oos, args.model, encoder)
                for i in tqdm(range(args.draws), desc=f"{shots}-shot draws", file=sys.stderr)]
        row: dict[str, Any] = {"shots": shots, "draws": args.draws, "model": args.model,
                               "extra_layers": list(encoder.extra_layers)}
        for key in COLUMNS:
            values = np.array([r[key] for r in runs])
            row[key] = {"mean": float(values.mean()), "se": float(values.std(ddof=1) / np.sqrt(len(values))),
                        "min": float(values.min()), "max": float(values.max())}
        row["share_meeting_both"] = float(np.mean([r["cost_points"] >= -2 and r["oos_recall"] >= 0.80 for r in runs]))
        row["runs"] = runs
        summary.append(row)
    print("| shots | draws | accuracy, no threshold | auto: cost (points) | auto: OOS recall | AUROC | "
          "ceiling | draws meeting both |")
    print("|---|---|---|---|---|---|---|---|")
    for r in summary:
        cells = " | ".join(f"{r[k]['mean']:.{d}f} ± {r[k]['se']:.{d}f}" for k, d in zip(COLUMNS, (2, 2, 3, 4, 3)))
        print(f"| {r['shots']} | {r['draws']} | {cells} | {r['share_meeting_both']:.2f} |")
    return summary


def cached_encoder(args: Any, encoder: Any) -> Any:
    """``encoder``'s vectors of every CLINC150 split this run reads, from the embedding cache (computed once,
    in one pass with the sentence embedding alone when layers are appended), behind a
    :class:`fewshot.meta.data.CachedEncoder` (unseen texts, such as label names, go to ``encoder``)."""
    from fewshot.encoders.encoder import Encoder
    from fewshot.meta.data import CachedEncoder, default_cache_dir, embed_texts

    splits = ["test", "oos_test"]
    if not args.skip_standard:
        splits += ["train_5", "train_10", "oos_train"]
    if args.draws > 0:
        splits.append("train")
    lists = {f"clinc150/{s}": read_split(args.data, "clinc150", s).text.tolist() for s in splits}
    cache = default_cache_dir()
    encoders = [encoder]
    if encoder.extra_layers and not encoder.int8 and not encoder.spec.trained_dir:
        encoders.append(Encoder(args.model, extra_layers=()))  # same forward pass: `fewshot train`'s vectors too
    embed_once(lists, encoders, cache_dir=cache, desc=f"encoding ({args.model})")
    cached = CachedEncoder(encoder, name=encoder.name)
    for texts in lists.values():
        cached.add(texts, embed_texts(texts, encoder, cache_dir=cache))
    return cached


def result_path(default: Path, model: str) -> Path:
    """``oos.json`` -> ``oos_<model>.json`` for another model than MiniLM (a folder: its name)."""
    if model == "minilm":
        return default
    return default.with_name(f"{default.stem}_{Path(model).name.replace(' ', '_')}{default.suffix}")


def main(argv: list[str] | None = None) -> int:
    from fewshot.cli.options import parse_layers

    p = parser(__doc__.splitlines()[0], out=None)
    p.add_argument("--model", default="minilm", help="minilm (default), default, mpnet, or a folder")
    p.add_argument("--extra-layers", type=parse_layers, default="auto",
                   help="encoder layers appended to the embedding, as `fewshot --extra-layers`: 'auto' (the "
                        "default), 'none' (the sentence embedding alone) or layer numbers like 2,4")
    p.add_argument("--none", type=int, nargs="+", default=[0, 20],
                   help="numbers of 'none of these' examples from oos_train to add (0: none)")
    p.add_argument("--draws", type=int, default=0,
                   help="random support sets per shot count for part 2 (the recorded runs use 20; 0: skip part 2)")
    p.add_argument("--draws-out", type=Path, default=None,
                   help="JSON of part 2 (default: bench/results/oos_draws.json, oos_draws_<model>.json for "
                        "another model than minilm)")
    p.add_argument("--skip-standard", action="store_true", help="only part 2 (the random draws)")
    args = p.parse_args(argv)
    args.out = args.out or result_path(RESULTS / "oos.json", args.model)
    args.draws_out = args.draws_out or result_path(RESULTS / "oos_draws.json", args.model)
    if not has_data(args.data, ("clinc150",)):
        return 0
    from fewshot.encoders.encoder import Encoder

    reproducible()
    test, oos = read_split(args.data, "clinc150", "test"), read_split(args.data, "clinc150", "oos_test")
    encoder = Encoder(args.model, extra_layers=args.extra_layers)
    cached = cached_encoder(args, encoder)  # each text encoded once, kept on disk for the next run
    cached.extra_layers = encoder.extra_layers  # recorded by the classifier (save) and in the rows
    if not args.skip_standard:
        write_json(args.out, standard_supports(args, cached, test, oos))
    if args.draws > 0:
        write_json(args.draws_out, random_draws(args, cached, test, oos))
    return 0


if __name__ == "__main__":
    sys.exit(main())
