"""Batch-aware in-scope scores: does reading a text's score together with its neighbours in the batch separate
in-domain unknowns better?

    python bench/oos_batch_score.py [--data ../shared/data] [--split valid|test] [--shots 5 10] [--draws 3]
                                    [--k K ...] [--weight W] [--rise R ...] [--reach A ...] [--near C]
                                    [--flat-smoothing]
                                    [--other 100] [--batch-from-train N]
                                    [--model minilm] [--hwu-draws N] [--out bench/results/oos_batch_score.json]

The episodes of ``bench/oos_indomain.py`` (same seeds). The batch: every ``--split`` query of the known and
held-out intents and ``--other`` CLINC150 ``oos_<split>`` texts (``--batch-from-train N``: N ``train`` texts of
every intent, not the support's, and ``--other`` of ``oos_train``), scored all at once, transductively:

- ``logit``: the product's in-scope score (``FewShotClassifier.score``), one text at a time;
- ``smooth``: ``(1 - w)·z + w·mean z`` of the text's ``k`` nearest batch texts (cosine), ``z`` the score
  standardised over the batch: a label-propagation-style reading (Zhou et al. 2004, "Learning with local and
  global consistency"), since an unknown intent's texts sit together and their scores are all low;
- ``novelty``: ``z - w·z(n)``, ``n`` the mean cosine of the ``k`` nearest batch texts minus that of the nearest
  example: a text much closer to other texts of the batch than to any example is more likely a new intent;
- ``both``: ``novelty``, then smoothed as ``smooth``;
- ``reach``: a ``both`` reading whose values are handed out again in the order of that reading plus the
  examples' reach (``fewshot.batch_reading.example_reach``: label propagation from the examples through the batch), the
  values being each text's lower of its reading and its reordered value (``fewshot.batch_reading.reordered``; with the
  product's rise: the product's ``batch_aware`` reading); ``reordered``: the reading's own values in that order,
  not lowered; ``kept lower``: each text keeping the lower of its reading and its reordered value, not reordered
  again.

Each is mapped back into the scores' units (the batch's mean and spread); ``lower-only``: a text keeps the lower of
its own score and the reading, so that the reading only adds unknown answers; ``rise R``: that, plus R of any rise
(the product keeps ``fewshot.batch_reading.BATCH_RISE`` of it); without a tag: the reading itself.

Reports in-domain and other-domain AUROC and in-domain recall at a 2-point cost (as ``oos_indomain.py``), paired
against ``logit``, and the product's answers with its automatic threshold without and with ``batch_aware``
(``FewShotClassifier.predict_with_scores``, always with the product's own settings: ``--k``, ``--weight``,
``--rise``, ``--reach`` and ``--near`` change only the readings compared), and the answers each ``both`` reading
would give at that threshold; means ± standard errors over episodes. Writes ``--out`` and a markdown table
(``.md``). See docs/research/unknown-in-domain.md ("Reading a batch together").
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd

import common  # bench/ is on the path as a script
import oos_discover as od
import oos_indomain as oi
import oos_none as on

METRICS = ("in_domain_auroc", "other_auroc", "in_domain_recall@2pt")
AUTO = ("accuracy", "in_domain", "other")
UNKNOWN = on.UNKNOWN


def batch_readings(score: np.ndarray, vectors: np.ndarray, nearest_example: np.ndarray, ks: list[int],
                   weight: float, rises: list[float] | None = None, scaled: bool = True,
                   examples: np.ndarray | None = None, reaches: list[float] | None = None,
                   near: float | None = None) -> dict[str, np.ndarray]:
    """The module docstring's scores for one batch, through the product's :func:`fewshot.batch_reading.batch_scores`
    (``smooth`` and ``novelty``: one of its two terms at 0), each whole, lower-only and with each of ``rises``
    (default: the product's); ``scaled=False``: the same smoothing weight for every text with a neighbour;
    ``examples`` (their vectors): each ``both`` reading also with the examples' reach (tag ``reach``; with
    ``reaches``, other than the product's alpha: ``reach A``); ``near``: the encoder's similarity floor (as the
    classifier reads it: ``fewshot.batch_reading.similarity_floor``; default ``BATCH_NEAR``)."""
    from fewshot.batch_reading import BATCH_NEAR, BATCH_REACH, BATCH_RISE, batch_scores, reordered

    near = BATCH_NEAR if near is None else near

    out = {"logit": score}
    tags = [(1.0, ""), (0.0, " lower-only")] + [(r, f" rise {r:g}") for r in (rises or [BATCH_RISE])]
    for k in ks:
        for name, smooth, novelty in (("smooth", weight, 0.0), ("novelty", 0.0, weight), ("both", weight, weight)):
            for rise, tag in tags:
                out[f"{name} k{k}{tag}"] = batch_scores(score, vectors, nearest_example, k=k, smooth=smooth,
                                                        novelty=novelty, rise=rise, scaled=scaled, near=near)
        for alpha in (reaches or [BATCH_REACH]) if examples is not None else []:
            for rise, tag in tags:
                name = f"both k{k}{tag} reach" + (f" {alpha:g}" if alpha != BATCH_REACH else "")
                out[name] = batch_scores(score, vectors, nearest_example, k=k, smooth=weight, novelty=weight,
                                         rise=rise, scaled=scaled, examples=examples, reach=alpha, near=near)
                if tag == f" rise {BATCH_RISE:g}":  # two other ways to take the reach into the product's reading
                    read = out[f"both k{k}{tag}"]
                    again = reordered(read, vectors, examples, k=k, reach=alpha, lowered=False, near=near)
                    out[name + " reordered"] = again  # the reading's own values in the new order, not lowered
                    out[name + " kept lower"] = np.minimum(read, again)  # not reordered again
    return out


def episode(frames: dict[str, pd.DataFrame], enc: Any, meta: dict, known: list[str], unknown: list[str],
            support: tuple[np.ndarray, np.ndarray, list[str]], ks: list[int], weight: float, n_other: int,
            batch_per_intent: int | None, rises: list[float] | None = None, scaled: bool = True,
            reaches: list[float] | None = None, near: float | None = None) -> dict:
    """One episode: every score's metrics on the batch (``near``: the readings' similarity floor; default the
    encoder's, as the classifier reads it)."""
    from fewshot import FewShotClassifier
    from fewshot.batch_reading import similarity_floor

    domains = list(common.CLINC150_DOMAINS)
    rng = np.random.default_rng([13, meta["shots"], meta["draw"], domains.index(meta["domain"]) if "domain" in meta
                                 else len(domains)])  # apart from the episode's own seed
    _, y, texts = support
    if batch_per_intent is None:
        batch = od.texts_of(frames["query"], frames["other"], known, unknown, n_other, rng)
    else:
        batch = od.from_train(frames, known, unknown, n_other, batch_per_intent, texts, rng)[0]
    clf = FewShotClassifier(encoder=enc, label_names=True, auto_unknown=True).fit(texts, [known[i] for i in y])
    batch_texts = batch.text.tolist()
    kind, gold = batch.kind.to_numpy(), batch.label.to_numpy()
    inside = kind == "in"
    result: dict[str, Any] = {**meta, "unknown": unknown, "batch": len(batch)}

    def shares(right: np.ndarray, unknown_answer: np.ndarray) -> dict[str, float]:
        """The :data:`AUTO` columns: in-scope texts answered with their label, and each kind answered unknown."""
        return {"accuracy": float(np.mean(right)), "in_domain": float(np.mean(unknown_answer[kind == "in_domain"])),
                "other": float(np.mean(unknown_answer[kind == "other"]))}

    for name, aware in (("auto", False), ("auto batch-aware", True)):  # the product's answers, as shipped
        answers = clf.predict_with_scores(batch_texts, batch_aware=aware)[0]
        result[name] = shares(answers[inside] == gold[inside], answers == UNKNOWN)
    answers, _, score = clf.predict_with_scores(batch_texts, auto_unknown=False)
    correct = answers[inside] == gold[inside]
    vectors = enc.encode(batch_texts)
    nearest = clf.support.nearest(vectors, 1)[0][:, 0]
    threshold = clf.auto_threshold_
    examples = clf.support.vectors  # the episodes have no "none of these" examples
    near = similarity_floor(enc) if near is None else near  # the classifier's own (MiniLM with layer 4: BATCH_NEAR)
    for name, s in batch_readings(score, vectors, nearest, ks, weight, rises, scaled, examples, reaches,
                                  near).items():
        result[name] = {"in_domain_auroc": oi.auroc(s[inside], s[kind == "in_domain"]),
                        "other_auroc": oi.auroc(s[inside], s[kind == "other"]),
                        "in_domain_recall@2pt": oi.recall_at_cost(correct, s[inside], s[kind == "in_domain"])}
        if name.startswith("both"):  # its answers at the automatic threshold (the product's: "auto batch-aware")
            result[f"auto {name}"] = shares(correct & (s[inside] >= threshold), s < threshold)
    return result


def summarise(episodes: list[dict]) -> list[dict]:
    """Per dataset and shots, per score: each metric's mean and its paired difference against ``logit`` (the
    automatic rule's answers: against ``auto``)."""
    rows = []
    for dataset, shots in sorted({(e["dataset"], e["shots"]) for e in episodes}):
        eps = [e for e in episodes if e["dataset"] == dataset and e["shots"] == shots]
        for name in [k for k, v in eps[0].items() if isinstance(v, dict)]:
            base, metrics = ("auto", AUTO) if name.startswith("auto") else ("logit", METRICS)
            row: dict[str, Any] = {"dataset": dataset, "shots": shots, "score": name, "episodes": len(eps),
                                   "batch": float(np.mean([e["batch"] for e in eps]))}
            for m in metrics:
                row[m] = oi.mean_se(np.array([e[name][m] for e in eps]))
                row[m + ":diff"] = oi.mean_se(np.array([e[name][m] - e[base][m] for e in eps]))
            rows.append(row)
    return rows


def markdown(rows: list[dict], command: str) -> str:
    def cells(r: dict, metrics: tuple[str, ...]) -> str:
        return " | ".join(f"{r[m][0]:.3f} | {r[m + ':diff'][0]:+.3f} ± {r[m + ':diff'][1]:.3f}" for m in metrics)

    def setting(r: dict) -> str:
        return f"| {r['dataset']} {r['shots']}-shot ({r['episodes']} ep.) | {r['batch']:.0f} | `{r['score']}` | "

    lines = [f"Command: `{command}`", "", "Means over episodes, Δ: paired against `logit` (± standard error).", "",
             "| setting | batch | score | in-domain AUROC | Δ | other-domain AUROC | Δ | in-domain recall@2pt | Δ |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [setting(r) + cells(r, METRICS) + " |" for r in rows if not r["score"].startswith("auto")]
    lines += ["", "The product's answers with its automatic threshold (`auto_unknown=True`), without and with "
              "`batch_aware` (the product's own settings, whatever `--k`, `--weight`, `--rise` and `--reach` say), "
              "and the answers of each `both` reading at that threshold; Δ: paired against `auto`. Accuracy: "
              "in-scope texts answered with their label "
              "(unknown counts wrong); then the share of the held-out intents' and of other-domain texts answered "
              "unknown.", "",
              "| setting | batch | answers | accuracy | Δ | in-domain unknown: answered unknown | Δ | other domain | Δ |",
              "|---|---|---|---|---|---|---|---|---|"]
    lines += [setting(r) + cells(r, AUTO) + " |" for r in rows if r["score"].startswith("auto")]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = on.episode_parser(__doc__.splitlines()[0], out="oos_batch_score.json")
    parser.add_argument("--k", type=int, nargs="+", default=None,
                        help="neighbours read per text, to compare (default: the product's)")
    parser.add_argument("--weight", type=float, default=None,
                        help="w of the smoothing and of the novelty term (default: the product's)")
    parser.add_argument("--rise", type=float, nargs="+", default=None,
                        help="shares of a rise kept, to compare (default: the product's)")
    parser.add_argument("--reach", type=float, nargs="+", default=None,
                        help="alphas of the examples' reach, to compare (default: the product's)")
    parser.add_argument("--flat-smoothing", action="store_true",
                        help="the readings compared smooth every text with a neighbour by the same weight (the product "
                             "scales it by how close the neighbours are)")
    parser.add_argument("--near", type=float, default=None,
                        help="least cosine of a neighbour in the readings compared (default: the encoder's own, "
                             "fewshot.batch_reading.similarity_floor; the product's answers always use that)")
    parser.add_argument("--other", type=int, default=100, help="other-domain texts per batch (CLINC150 oos)")
    parser.add_argument("--batch-from-train", type=int, default=None, metavar="N",
                        help="the batch: N train texts of every known and held-out intent (default: the query split)")
    args = parser.parse_args()
    from fewshot.batch_reading import BATCH_NEIGHBOURS, BATCH_WEIGHT

    args.k = args.k or [BATCH_NEIGHBOURS]
    args.weight = BATCH_WEIGHT if args.weight is None else args.weight
    if not 0 <= args.weight <= 1 or min(args.k) < 1 or not all(0 <= r <= 1 for r in args.rise or []) \
            or not all(0 <= a < 1 for a in args.reach or []):
        parser.error(f"--weight and --rise must lie in [0, 1], --reach in [0, 1) and --k be positive, got "
                     f"{args.weight}, {args.rise}, {args.reach} and {args.k}")
    episodes = [episode(frames, enc, meta, known, unknown, support, args.k, args.weight, args.other,
                        args.batch_from_train, args.rise, not args.flat_smoothing, args.reach, args.near)
                for enc, frames, meta, known, unknown, support in on.episodes_of(args)]
    return on.write_summary("oos_batch_score.py", args.out, episodes, summarise, markdown)


if __name__ == "__main__":
    sys.exit(main())
