"""In-domain "none of these" examples: do examples of some unknown intents teach the classifier to refuse others?

    python bench/oos_none.py [--data ../shared/data] [--split valid|test] [--shots 5 10] [--draws 3]
                             [--seen-share 0.4] [--none-shots N] [--model minilm] [--hwu-draws N]
                             [--out bench/results/oos_none.json]

The episodes of ``bench/oos_indomain.py`` (the same seeds: CLINC150 single-domain sets of 10 intents with 5
held out, HWU64 with a third of every scenario's intents held out). In each, a share of the held-out intents
(``--seen-share``, at least one, never all) are the in-domain unknowns the user knows of: ``--none-shots``
(default: the shot count) of their ``train`` texts are added to the examples under the label ``unknown``, the
product's "none of these" examples. The other held-out intents stay unseen. Two classifiers per episode,
through the public API (``FewShotClassifier(label_names=True, auto_unknown=True)`` over
:class:`fewshot.meta.data.CachedEncoder`, fed the benchmark's cached vectors): without and with the "none of these" examples. Per classifier, on ``--split``:

- ``accuracy``: in-scope queries answered with their label (an unknown answer counts wrong), the unknown
  rule applied as the product applies it (the automatic threshold, and "none of these" winning);
- ``seen`` / ``unseen`` / ``other``: share of the seen held-out intents' queries, of the unseen ones' and of
  CLINC150 ``oos_<split>`` (other domain) answered unknown;
- ``unseen_auroc``, ``unseen_recall@2pt``: the in-scope score (``-inf`` where "none of these" wins) against
  the unseen held-out intents' queries, as in ``bench/oos_indomain.py``.

Means ± standard errors over episodes, and the paired difference (with minus without). Writes ``--out`` and a
markdown table next to it (``.md``). See docs/research/unknown-in-domain.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import common  # bench/ is on the path as a script
import oos_indomain as oi

KINDS = ("seen", "unseen", "other")
METRICS = ("accuracy", *KINDS, "unseen_auroc", "unseen_recall@2pt")
UNKNOWN = "unknown"  # the product's default unknown_label: examples under it are "none of these" examples


def classifier_metrics(clf: Any, in_scope: pd.DataFrame, sets: dict[str, list[str]], batch_aware: bool = False
                       ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """What a user of ``clf`` sees on the episode's queries (see the module docstring), and the raw scores
    (``-inf`` where "none of these" won; ``right``: the top label of each in-scope query is its label).
    ``batch_aware``: the in-scope queries and ``sets`` answered as one batch, read together."""
    parts = {"in_scope": in_scope.text.tolist(), **sets}
    if batch_aware:
        every = clf.predict_with_scores([t for texts in parts.values() for t in texts], batch_aware=True)
        ends = np.cumsum([len(texts) for texts in parts.values()])
        found = {kind: tuple(a[end - len(parts[kind]):end] for a in every) for kind, end in zip(parts, ends)}
    else:
        found = {kind: clf.predict_with_scores(texts) for kind, texts in parts.items()}
    labels, probs, s_in = found["in_scope"]
    gold = in_scope.label.to_numpy()
    top = clf.classes_[probs.argmax(axis=1)]
    out = {"accuracy": 100 * float((labels == gold).mean())}
    raw = {"in_scope": np.where(np.isfinite(s_in), s_in, -1e9), "right": top == gold}  # -1e9: lowest possible
    for kind in sets:
        answered, _, scores = found[kind]
        out[kind] = float((answered == UNKNOWN).mean())
        raw[kind] = np.where(np.isfinite(scores), scores, -1e9)
    out["unseen_auroc"] = oi.auroc(raw["in_scope"], raw["unseen"])
    out["unseen_recall@2pt"] = oi.recall_at_cost(raw["right"], raw["in_scope"], raw["unseen"])
    return out, raw


def same_cost(raw: dict[str, np.ndarray], accuracy: float, kinds: tuple[str, ...]) -> dict[str, float]:
    """Share of each of ``kinds`` answered unknown by a threshold on ``raw``'s in-scope score alone, set where
    the in-scope accuracy is ``accuracy`` (%): the score threshold that costs what the other arm costs."""
    good = np.sort(raw["in_scope"][raw["right"]])
    keep = int(round(accuracy / 100 * len(raw["right"])))
    if keep >= len(good):
        t = -np.inf
    else:
        t = good[len(good) - keep] if keep > 0 else np.inf
    return {f"{k}@same_cost": float((raw[k] < t).mean()) for k in kinds}


def episode(frames: dict[str, pd.DataFrame], enc: Any, meta: dict, known: list[str], unknown: list[str],
            support: tuple[np.ndarray, np.ndarray, list[str]], seen_share: float, none_shots: int) -> dict:
    """One episode: the classifier without and with "none of these" examples of the seen held-out intents
    (``frames``: the dataset's ``train`` and query rows, and the other-domain texts)."""
    from fewshot import FewShotClassifier

    train, query, other = frames["train"], frames["query"], frames["other"]
    domains = list(common.CLINC150_DOMAINS)
    rng = np.random.default_rng([9, meta["shots"], meta["draw"], domains.index(meta["domain"]) if "domain" in meta
                                 else len(domains)])  # apart from the episode's own seed
    n_seen = min(len(unknown) - 1, max(1, round(seen_share * len(unknown))))
    seen = sorted(rng.choice(unknown, size=n_seen, replace=False).tolist())
    unseen = [u for u in unknown if u not in seen]
    none_texts: list[str] = []
    for intent in seen:
        pool = train.text[train.label == intent].tolist()
        none_texts += [pool[i] for i in rng.choice(len(pool), size=min(none_shots, len(pool)), replace=False)]
    _, y, texts = support
    labels = [known[i] for i in y]
    sets = {"seen": query.text[query.label.isin(seen)].tolist(), "unseen": query.text[query.label.isin(unseen)].tolist(),
            "other": other.text.tolist()}
    in_scope = query[query.label.isin(known)]
    raws: dict[str, dict[str, np.ndarray]] = {}
    result = {**meta, "seen": seen, "unseen": unseen, "none_examples": len(none_texts)}
    for arm, (t, lab) in {"without": (texts, labels),
                          "with": (texts + none_texts, labels + [UNKNOWN] * len(none_texts))}.items():
        clf = FewShotClassifier(encoder=enc, label_names=True, auto_unknown=True).fit(t, lab)
        result[arm], raws[arm] = classifier_metrics(clf, in_scope, sets)
    # the classifier without them, its threshold moved to cost what the "none of these" examples cost
    result["threshold"] = same_cost(raws["without"], result["with"]["accuracy"], tuple(sets))
    return result


def summarise(episodes: list[dict]) -> list[dict]:
    rows = []
    for dataset, shots in sorted({(e["dataset"], e["shots"]) for e in episodes}):
        eps = [e for e in episodes if e["dataset"] == dataset and e["shots"] == shots]
        row: dict[str, Any] = {"dataset": dataset, "shots": shots, "episodes": len(eps),
                               "none_examples": oi.mean_se(np.array([float(e["none_examples"]) for e in eps]))}
        row |= paired([e["without"] for e in eps], [e["with"] for e in eps], [e["threshold"] for e in eps],
                      METRICS, KINDS)
        rows.append(row)
    return rows


def paired(without: list[dict], with_: list[dict], thresholds: list[dict], metrics: tuple[str, ...],
           kinds: tuple[str, ...]) -> dict[str, dict]:
    """Per metric, over episodes: mean ± standard error without, with, and of the paired difference; per kind,
    the share a same-cost threshold answers unknown (:func:`same_cost`) and with minus it, paired."""
    row: dict[str, dict] = {}
    for m in metrics:
        a = np.array([w[m] for w in without])
        b = np.array([w[m] for w in with_])
        row[m] = {"without": oi.mean_se(a), "with": oi.mean_se(b), "diff": oi.mean_se(b - a)}
    for k in kinds:
        t = np.array([th[f"{k}@same_cost"] for th in thresholds])
        b = np.array([w[k] for w in with_])
        row[f"{k}@same_cost"] = {"threshold": oi.mean_se(t), "diff": oi.mean_se(b - t)}
    return row


def markdown(rows: list[dict], command: str) -> str:
    lines = [f"Command: `{command}`", "",
             "Means ± standard errors over episodes; each cell: without → with \"none of these\" examples (Δ paired). "
             "accuracy: in-scope queries answered with their label (%), unknown rule applied; seen / unseen / "
             "other: share answered unknown of the seen held-out intents, the unseen ones and other-domain texts.", "",
             "| setting | none examples | accuracy % | seen held-out: answered unknown | unseen held-out: answered "
             "unknown | other domain: answered unknown | unseen: AUROC | unseen: recall@2pt |",
             "|---|---|---|---|---|---|---|---|"]
    same = ["", "The classifier without them, its score threshold moved to the accuracy the \"none of these\" "
            "examples leave: share answered unknown by that threshold, and with the examples minus it (Δ paired):", "",
            "| setting | seen held-out | Δ | unseen held-out | Δ | other domain | Δ |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        def cell(m: str, d: int = 3) -> str:
            c = r[m]
            return (f"{c['without'][0]:.{d}f} → {c['with'][0]:.{d}f} "
                    f"({c['diff'][0]:+.{d}f} ± {c['diff'][1]:.{d}f})")

        lines.append(f"| {r['dataset']} {r['shots']}-shot ({r['episodes']} ep.) | {r['none_examples'][0]:.1f} | "
                     f"{cell('accuracy', 1)} | {cell('seen')} | {cell('unseen')} | {cell('other')} | "
                     f"{cell('unseen_auroc')} | {cell('unseen_recall@2pt')} |")
        same.append(f"| {r['dataset']} {r['shots']}-shot | " + " | ".join(
            f"{r[k + '@same_cost']['threshold'][0]:.3f} | {r[k + '@same_cost']['diff'][0]:+.3f} ± "
            f"{r[k + '@same_cost']['diff'][1]:.3f}" for k in KINDS) + " |")
    return "\n".join(lines + same) + "\n"


def load_frames(vec: oi.Vectors, enc: Any, dataset: str, split: str) -> dict[str, pd.DataFrame]:
    """``dataset``'s ``train`` and ``split`` rows and CLINC150 ``oos_<split>`` and ``oos_train`` (other domain),
    their cached vectors handed to ``enc`` (a :class:`fewshot.meta.data.CachedEncoder`)."""
    frames = {}
    for name, (ds, part) in {"train": (dataset, "train"), "query": (dataset, split),
                             "other": ("clinc150", f"oos_{split}"), "other_train": ("clinc150", "oos_train")}.items():
        frames[name], vectors = vec.split(ds, part)
        enc.add(frames[name].text.tolist(), vectors)
    return frames


def episode_parser(description: str, out: str) -> argparse.ArgumentParser:
    """The options every script over the oos_indomain episodes takes (split, shots, draws, datasets, encoder)."""
    parser = common.parser(description, out=out)
    parser.add_argument("--split", choices=("valid", "test"), default="valid")
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--draws", type=int, default=3, help="draws per CLINC150 domain (10 domains)")
    parser.add_argument("--hwu-draws", type=int, default=None, help="HWU64 draws per shot count (default: 3 x --draws)")
    parser.add_argument("--datasets", nargs="+", default=["clinc150", "hwu64"])
    parser.add_argument("--model", default="minilm", help="encoder (frozen MiniLM-L6: no meta-training on these sets)")
    parser.add_argument("--cache", default="/tmp/fewshot-oosid-cache", help="folder for cached vectors (.npy)")
    return parser


def episodes_of(args: argparse.Namespace) -> Iterator[tuple[Any, dict, dict, list[str], list[str], tuple]]:
    """``(encoder, frames, meta, known, unknown, support)`` of every episode ``args`` asks for (see
    :func:`episode_parser`); nothing when the data folder lacks CLINC150. The encoder is the product's classifier
    input, fed from the cached vectors (:class:`fewshot.meta.data.CachedEncoder`, bitwise the same)."""
    data = Path(args.data)
    if not common.has_data(data, ("clinc150",), args.split):
        return
    common.reproducible()
    common.set_threads(1)
    oi.LIB.update(oi._library())
    vec = oi.Vectors(data, Path(args.cache), args.model, "auto")
    from fewshot.meta.data import CachedEncoder

    enc = CachedEncoder(oi.LIB["Encoder"](args.model, extra_layers="auto"), name=args.model)
    hwu_draws = 3 * args.draws if args.hwu_draws is None else args.hwu_draws
    for shots in args.shots:
        for dataset in args.datasets:
            draws = args.draws if dataset == "clinc150" else hwu_draws
            if dataset != "clinc150" and not (data / dataset).is_dir():
                continue
            frames = load_frames(vec, enc, dataset, args.split)
            for meta, known, unknown, support in oi.episode_draws(vec, dataset, shots, draws):
                yield enc, frames, meta, known, unknown, support
        print(f"done: {shots} shots", file=sys.stderr, flush=True)


def write_summary(script: str, out: str, episodes: list[dict], summarise: Callable[[list[dict]], list[dict]],
                  markdown: Callable[[list[dict], str], str]) -> int:
    """Write ``episodes``, their summary and its markdown table to ``out`` (nothing without episodes: no data);
    the exit status."""
    if episodes:
        rows = summarise(episodes)
        command = f"python bench/{script} " + " ".join(sys.argv[1:])
        oi.write_results(Path(out), {"command": command, "summary": rows, "episodes": episodes},
                         markdown(rows, command))
    return 0


def main() -> int:
    parser = episode_parser(__doc__.splitlines()[0], out="oos_none.json")
    parser.add_argument("--seen-share", type=float, default=0.4,
                        help="share of an episode's held-out intents with \"none of these\" examples (at least one, "
                             "never all)")
    parser.add_argument("--none-shots", type=int, default=None,
                        help="\"none of these\" examples per seen held-out intent (default: the shot count)")
    args = parser.parse_args()
    if not 0 < args.seen_share < 1:
        parser.error(f"--seen-share must be between 0 and 1, got {args.seen_share}")
    episodes = [episode(frames, enc, meta, known, unknown, support, args.seen_share, args.none_shots or meta["shots"])
                for enc, frames, meta, known, unknown, support in episodes_of(args)]
    return write_summary("oos_none.py", args.out, episodes, summarise, markdown)


if __name__ == "__main__":
    sys.exit(main())
