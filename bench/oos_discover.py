"""Groups no label covers: does naming the groups of a batch's unknown answers catch the rest of those intents?

    python bench/oos_discover.py [--data ../shared/data] [--split valid|test] [--shots 5 10] [--draws 3]
                                 [--distances 0.4 0.5 0.6] [--pools 1 2] [--min-size 3] [--other 100] [--per-group N]
                                 [--batch-from-train N] [--rounds N] [--batch-aware] [--model minilm] [--hwu-draws N]
                                 [--out bench/results/oos_discover.json]

The episodes of ``bench/oos_indomain.py`` (the same seeds: CLINC150 single-domain sets of 10 intents with 5
held out, HWU64 with a third of every scenario's intents held out). The ``--split`` queries of the known and
the held-out intents, with ``--other`` texts of CLINC150 ``oos_<split>`` (other domain, default 100), are cut
at random into two halves:

1. **The batch** (first half): the product's classifier (``auto_unknown=True``, through the public API over
   :class:`fewshot.meta.data.CachedEncoder`) answers it, and :func:`fewshot.uncovered_groups` groups the texts
   it answers unknown and the least in-scope others (per ``--distances``, ``--pools``, ``--min-size``).
2. **The user** looks at each group and marks it "none of these" when most of its texts are indeed out of
   scope (held-out intents or other domain): its most typical texts, a label's worth as the app adds them
   (``--per-group N``: N, 0: all), become ``unknown`` examples, the in-scope ones among them too (a user's
   mistake carried along). Groups that are mostly in scope are left alone.
3. **The next texts** (second half, never grouped): the classifier without and with those examples answers
   them. ``accuracy``: in-scope texts answered with their label (unknown counts wrong); ``in_domain`` /
   ``other``: share of the held-out intents' texts / of other-domain texts answered unknown. Last: the
   classifier without them, its score threshold moved to cost the same accuracy (what a threshold alone
   catches at that price), and with them minus it (paired).

Means ± standard errors over episodes. Writes ``--out`` and a markdown table next to it (``.md``). See
docs/research/unknown-in-domain.md.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd

import common  # bench/ is on the path as a script
import oos_indomain as oi
import oos_none as on

UNKNOWN = on.UNKNOWN
METRICS = ("accuracy", "in_domain", "other", "in_domain_auroc")
GROUP_STATS = ("groups", "marked_groups", "marked_texts", "marked_in_scope", "intents_marked", "intents_held_out")


def texts_of(query: pd.DataFrame, other: pd.DataFrame, known: list[str], unknown: list[str], n_other: int,
             rng: np.random.Generator, per_intent: int | None = None) -> pd.DataFrame:
    """The known and held-out intents' rows of ``query`` (``per_intent`` drawn of each, all if None) and
    ``n_other`` drawn rows of ``other``, with their ``kind``: ``in``, ``in_domain`` or ``other``."""
    def drawn(frame: pd.DataFrame, n: int | None) -> pd.DataFrame:
        return frame if n is None or n >= len(frame) else frame.iloc[np.sort(rng.choice(len(frame), n, replace=False))]

    parts = [drawn(query[query.label == lab], per_intent) for lab in known + unknown]
    rows = pd.concat(parts, ignore_index=True)
    return pd.concat([rows.assign(kind=np.where(rows.label.isin(known), "in", "in_domain")),
                      drawn(other, n_other).assign(kind="other")], ignore_index=True)


def halves(frames: dict[str, pd.DataFrame], known: list[str], unknown: list[str], n_other: int,
           rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The episode's texts (:func:`texts_of` the query split) cut at random into two halves."""
    texts = texts_of(frames["query"], frames["other"], known, unknown, n_other, rng)
    first = rng.permutation(len(texts)) % 2 == 0
    return texts[first].reset_index(drop=True), texts[~first].reset_index(drop=True)


def from_train(frames: dict[str, pd.DataFrame], known: list[str], unknown: list[str], n_other: int,
               per_intent: int, support_texts: list[str], rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A bigger batch: ``per_intent`` ``train`` texts of every known and held-out intent (not the support's) and
    ``n_other`` of CLINC150 ``oos_train``; the next texts: the whole query split, as :func:`halves` draws it."""
    train = frames["train"][~frames["train"].text.isin(set(support_texts))]
    batch = texts_of(train, frames["other_train"], known, unknown, n_other, rng, per_intent)
    return batch, texts_of(frames["query"], frames["other"], known, unknown, n_other, rng)


def answers(clf: Any, texts: pd.DataFrame, batch_aware: bool = False) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """What the user sees on ``texts`` (see the module docstring), and the raw scores for the same-cost threshold
    (``batch_aware``: ``texts`` read together)."""
    sets = {"in_domain": texts.text[texts.kind == "in_domain"].tolist(), "other": texts.text[texts.kind == "other"].tolist()}
    found, raw = on.classifier_metrics(clf, texts[texts.kind == "in"],
                                       {"unseen": sets["in_domain"], "other": sets["other"]}, batch_aware)
    raw["in_domain"] = raw.pop("unseen")
    return {"accuracy": found["accuracy"], "in_domain": found["unseen"], "other": found["other"],
            "in_domain_auroc": found["unseen_auroc"]}, raw


def marked(batch: pd.DataFrame, groups: list[list[int]], per_group: int | None) -> tuple[pd.DataFrame, int]:
    """The texts of the groups a user marks "none of these" (mostly out of scope; the ``per_group`` most typical
    of each, all if None), and how many groups those are."""
    rows: list[int] = []
    n = 0
    for g in groups:
        if (batch.kind.to_numpy()[g] != "in").mean() > 0.5:
            rows += g[:per_group]
            n += 1
    return batch.iloc[rows], n


def episode(frames: dict[str, pd.DataFrame], enc: Any, meta: dict, known: list[str], unknown: list[str],
            support: tuple[np.ndarray, np.ndarray, list[str]], settings: list[tuple[float, float]], min_size: int,
            n_other: int, per_group: int | str | None, batch_per_intent: int | None = None, rounds: int = 1,
            batch_aware: bool = False) -> dict:
    """One episode: the classifier on the next texts without and with the groups a user marks, per distance
    (``per_group``: texts added per group, ``"label"`` for a label's worth as the app adds, None for all;
    ``rounds``: how many times the user classifies the batch again and looks at the new groups; ``batch_aware``:
    the batch and the next texts each read together)."""
    from fewshot import FewShotClassifier, uncovered_groups
    from fewshot.uncovered import label_worth

    domains = list(common.CLINC150_DOMAINS)
    rng = np.random.default_rng([11, meta["shots"], meta["draw"], domains.index(meta["domain"]) if "domain" in meta
                                 else len(domains)])  # apart from the episode's own seed
    _, y, texts = support
    batch, later = (halves(frames, known, unknown, n_other, rng) if batch_per_intent is None else
                    from_train(frames, known, unknown, n_other, batch_per_intent, texts, rng))
    labels = [known[i] for i in y]
    if per_group == "label":
        per_group = label_worth(np.bincount(y))
    clf = FewShotClassifier(encoder=enc, label_names=True, auto_unknown=True).fit(texts, labels)
    result: dict[str, Any] = {**meta, "unknown": unknown, "batch_unknown": 0}
    result["without"], raw = answers(clf, later, batch_aware)
    result["batch_unknown"] = int((clf.predict(batch.text.tolist(), batch_aware=batch_aware) == UNKNOWN).sum())
    for d, pool in settings:
        current, none, n_groups, n_marked = clf, batch.iloc[:0], 0, 0
        for _ in range(rounds):  # a round: group what is still unknown and unmarked, mark, refit
            rest = batch[~batch.text.isin(set(none.text))].reset_index(drop=True)
            groups = uncovered_groups(current, rest.text.tolist(), distance=d, min_size=min_size, pool=pool,
                                      batch_aware=batch_aware)
            new, n = marked(rest, groups, per_group)
            n_groups, n_marked = n_groups + len(groups), n_marked + n
            if not len(new):
                break
            none = pd.concat([none, new], ignore_index=True)
            current = FewShotClassifier(encoder=enc, label_names=True, auto_unknown=True).fit(
                texts + none.text.tolist(), labels + [UNKNOWN] * len(none))
        stats = {"groups": n_groups, "marked_groups": n_marked, "marked_texts": len(none),
                 "marked_in_scope": int((none.kind == "in").sum()),
                 "intents_marked": int(none.label[none.kind == "in_domain"].nunique()),
                 "intents_held_out": len(unknown)}
        found = answers(current, later, batch_aware)[0] if len(none) else dict(result["without"])
        result[f"d{d:g}/p{pool:g}"] = {**found, **stats,
                            "threshold": on.same_cost(raw, found["accuracy"], ("in_domain", "other"))}
    return result


def summarise(episodes: list[dict], settings: list[tuple[float, float]]) -> list[dict]:
    rows = []
    for dataset, shots in sorted({(e["dataset"], e["shots"]) for e in episodes}):
        eps = [e for e in episodes if e["dataset"] == dataset and e["shots"] == shots]
        for d, pool in settings:
            key = f"d{d:g}/p{pool:g}"
            row: dict[str, Any] = {"dataset": dataset, "shots": shots, "distance": d, "pool": pool, "episodes": len(eps),
                                   "batch_unknown": oi.mean_se(np.array([float(e["batch_unknown"]) for e in eps]))}
            for s in GROUP_STATS:
                row[s] = oi.mean_se(np.array([float(e[key][s]) for e in eps]))
            row |= on.paired([e["without"] for e in eps], [e[key] for e in eps],
                             [e[key]["threshold"] for e in eps], METRICS, ("in_domain", "other"))
            rows.append(row)
    return rows


def markdown(rows: list[dict], command: str) -> str:
    lines = [f"Command: `{command}`", "",
             "Means ± standard errors over episodes. Groups: among the batch half's texts answered unknown; marked: "
             "the groups mostly out of scope, their texts added as \"none of these\" examples. On the other half, "
             "without → with them (Δ paired): accuracy (%, unknown counts wrong), held-out intents' texts and "
             "other-domain texts answered unknown; last two columns: with them minus a threshold of the same "
             "cost (paired).", "",
             "| setting | distance | pool | batch: answered unknown | groups | marked (texts, in scope) | held-out "
             "intents marked | accuracy % | in-domain unknown: answered unknown | other domain | in-domain AUROC "
             "| beyond a threshold of the same cost: in-domain / other |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def cell(m: str, dd: int = 3) -> str:
            c = r[m]
            return f"{c['without'][0]:.{dd}f} → {c['with'][0]:.{dd}f} ({c['diff'][0]:+.{dd}f} ± {c['diff'][1]:.{dd}f})"

        beyond = " / ".join(f"{r[k + '@same_cost']['diff'][0]:+.3f} ± {r[k + '@same_cost']['diff'][1]:.3f}"
                            for k in ("in_domain", "other"))
        lines.append(
            f"| {r['dataset']} {r['shots']}-shot ({r['episodes']} ep.) | {r['distance']:g} | {r['pool']:g} | "
            f"{r['batch_unknown'][0]:.1f} | {r['groups'][0]:.1f} | {r['marked_groups'][0]:.1f} "
            f"({r['marked_texts'][0]:.1f}, {r['marked_in_scope'][0]:.1f}) | "
            f"{r['intents_marked'][0]:.1f} of {r['intents_held_out'][0]:.0f} | {cell('accuracy', 1)} | "
            f"{cell('in_domain')} | {cell('other')} | {cell('in_domain_auroc')} | {beyond} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = on.episode_parser(__doc__.splitlines()[0], out="oos_discover.json")
    parser.add_argument("--distances", type=float, nargs="+", default=None,
                        help="grouping distances to compare (default: the product's)")
    parser.add_argument("--pools", type=float, nargs="+", default=None,
                        help="texts grouped, as multiples of the unknown answers, to compare (default: the product's)")
    parser.add_argument("--min-size", type=int, default=None, help="fewest texts per group (default: the product's)")
    parser.add_argument("--other", type=int, default=100,
                        help="other-domain texts per episode, drawn from CLINC150 oos_<split> (default: 100, all of "
                             "oos_valid, so that valid and test batches look alike)")
    parser.add_argument("--per-group", type=int, default=None,
                        help="texts of a marked group added, its most typical first (default: a label's worth, as "
                             "the app adds; 0: all)")
    parser.add_argument("--batch-from-train", type=int, default=None, metavar="N",
                        help="the batch: N train texts of every known and held-out intent (not the support's) and "
                             "--other of CLINC150 oos_train; the next texts: the whole query split (default: the "
                             "query split cut in halves)")
    parser.add_argument("--batch-aware", action="store_true",
                        help="the batch and the next texts each read together (FewShotClassifier.predict_with_scores("
                             "batch_aware=True)), without and with the marked groups")
    parser.add_argument("--rounds", type=int, default=1,
                        help="review rounds: after marking, the batch is classified again and its new groups looked "
                             "at (default 1)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    from fewshot.uncovered import GROUP_DISTANCE, MIN_GROUP_SIZE, POOL

    settings = [(d, p) for d in args.distances or [GROUP_DISTANCE] for p in args.pools or [POOL]]
    per_group = None if args.per_group == 0 else args.per_group or "label"
    episodes = [episode(frames, enc, meta, known, unknown, support, settings, args.min_size or MIN_GROUP_SIZE,
                        args.other, per_group, args.batch_from_train, args.rounds, args.batch_aware)
                for enc, frames, meta, known, unknown, support in on.episodes_of(args)]
    return on.write_summary("oos_discover.py", args.out, episodes, lambda eps: summarise(eps, settings), markdown)


if __name__ == "__main__":
    sys.exit(main())
