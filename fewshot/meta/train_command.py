"""``fewshot train``: encode labelled CSVs once, meta-train a head, evaluate it, write a model folder.

:mod:`fewshot.cli.options` builds the one parser with :func:`add_train_arguments`; :mod:`fewshot.cli.commands`
calls :func:`run_train`.
Importing this module is cheap (no torch): the parser of every command is built from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from ..errors import FewShotError
from .training_args import META_METHODS, TRAIN_METHODS, TrainConfig

DESCRIPTION = ("Meta-train a head on frozen sentence embeddings from labelled CSVs and write a model folder; "
               "with --encoder, train the encoder's top layers themselves (distilled from a teacher, plus "
               "episodes) and write a sentence-transformers folder (or, with --compact, the trained layers alone).")

_FLAG_HELP = {
    "method": "meta-training method: " + "; ".join(f"{name}: {text}" for name, text in TRAIN_METHODS.items()),
    "steps": "training steps", "n_way": "labels per episode (capped at the training labels)",
    "identity_decay": "L2 pull of the head back to the identity", "val_fraction": "share of labels held out",
    "inner_steps": "inner-loop steps of maml/fomaml/reptile", "inner_lr": "inner-loop learning rate of maml/fomaml",
    "reptile_inner_lr": "inner-loop learning rate of reptile",
    "seed": "random seed (data split, episodes, initialisation)",
    "encoder": "train the base encoder's top transformer layers (distillation from --teacher, episodes, a pull "
               "to the frozen vectors) instead of a head; writes a sentence-transformers folder",
    "teacher": "--encoder: the model distilled from ('mpnet', a folder or a hub id); its embeddings are cached",
    "train_layers": "--encoder: top transformer layers trained",
    "append_layers": "--encoder: layers appended to the student's vector (trained ones too), comma-separated, as the "
                     "product does ('' for none)",
    "encoder_lr": "--encoder: learning rate of the trained layers",
    "projection_lr": "--encoder: learning rate of the student-to-teacher projection",
    "ridge": "--encoder: ridge of the least-squares initial projection",
    "batch_labels": "--encoder: labels per batch", "batch_per_label": "--encoder: texts per label in a batch",
    "distill_weight": "--encoder: weight of 1 - cos(projected student, teacher)",
    "structure_weight": "--encoder: weight of the in-batch similarity KL (teacher -> student)",
    "structure_temperature": "--encoder: temperature of the similarity KL",
    "episode_weight": "--encoder: weight of the prototypical loss on the batch",
    "contrastive_weight": "--encoder: weight of the contrastive loss on same-label pairs + hard negatives",
    "preserve_weight": "--encoder: weight of the squared distance to the frozen encoder's vector",
    "unknown_weight": "--encoder: weight of the held-out-label episodes (known queries ranked above the texts of "
                      "labels hidden from the support set, as unknown intents)",
    "unknown_labels": "--encoder: labels of each batch hidden when --unknown-weight > 0",
    "batch_groups": "--encoder: draw a batch's labels as this many groups of neighbouring labels (0: at random); "
                    "--unknown-weight then hides one label per group, an in-domain unknown for its siblings",
    "selfsup_weight": "--encoder: weight of the self-supervised contrast of two dropout views of each text (SimCSE)",
    "selfsup_temperature": "--encoder: temperature of the self-supervised contrast",
    "augment_weight": "--encoder: weight of the distillation on an EDA copy of each text (words dropped and swapped)",
    "augment_delete": "--encoder: EDA copy, probability of dropping each word",
    "augment_swaps": "--encoder: EDA copy, random word pairs exchanged",
    "pairs_weight": "--encoder: weight of the general sentence pairs of --general-pairs (cosine to gold score)",
    "pairs_batch": "--encoder: general sentence pairs per step",
    "checkpoint_every": "--encoder: steps between resumable checkpoints in --out (0: none)",
}


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the arguments of ``fewshot train`` to ``parser`` (the ``train`` subparser of the CLI)."""
    if parser.description is None:
        parser.description = DESCRIPTION
    parser.add_argument("--data", action="append", required=True, metavar="CSV",
                        help="labelled training CSV (text,label); repeat for several")
    parser.add_argument("--out", required=True, help="model folder to write (e.g. models/NAME)")
    parser.add_argument("--text-column", help="column holding the text (default: 'text', else one named like it, "
                                              "as for the other commands)")
    parser.add_argument("--label-column", help="column holding the label (default: 'label', else one named like "
                                               "it, as for the other commands)")
    parser.add_argument("--eval-support", action="append", default=[], metavar="CSV",
                        help="support CSV of an evaluation reported in the model card (pairs with --eval-test)")
    parser.add_argument("--eval-test", action="append", default=[], metavar="CSV", help="test CSV for --eval-support")
    parser.add_argument("--cache-dir", default=None,
                        help="where frozen embeddings are cached (default: $FEWSHOT_CACHE/embeddings or "
                             "~/.cache/fewshot/embeddings)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (also FEWSHOT_NO_PROGRESS=1)")
    parser.add_argument("--val-support", action="append", default=[], metavar="CSV",
                        help="--encoder: support CSV of a few-shot evaluation that selects the kept step (pairs "
                             "with --val-test; use a dataset not in --data); default: held-out training labels")
    parser.add_argument("--val-test", action="append", default=[], metavar="CSV", help="query CSV for --val-support")
    parser.add_argument("--general-pairs", default=None, metavar="CSV",
                        help="--encoder: general sentence pairs (text1,text2,score with score in [0, 1]) for "
                             "--pairs-weight, against forgetting outside the training domain")
    parser.add_argument("--resume", action="store_true",
                        help="--encoder: continue from the checkpoint in --out (same flags required)")
    parser.add_argument("--compact", action="store_true",
                        help="--encoder: write only the trained layers, rounded to float16 (about 14 MB for 4 MiniLM "
                             "layers), loaded over the base model; no complete sentence-transformers copy")
    parser.add_argument("--preset", choices=sorted(TrainConfig.PRESETS), default=None,
                        help="start from a named hyperparameter set; flags below override it. "
                             "'matching' is the recipe of the shipped heads models/xfer-no-*")
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_text = f"{_FLAG_HELP.get(f.name, f.name.replace('_', ' '))} (default: {default})"
        # default None: "not given", so that --preset values survive and the command records what was typed
        if isinstance(default, bool):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        elif f.name == "method":  # every method by name; an unknown one is a FewShotError (exit 2), not argparse's
            parser.add_argument(flag, dest=f.name, default=None, metavar="{" + ",".join(TRAIN_METHODS) + "}",
                                help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, type=type(default), default=None, help=help_text)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """``TrainConfig`` (or the ``--preset``) with every flag that was given applied on top."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    preset = getattr(args, "preset", None)
    return TrainConfig.preset(preset, **given) if preset else TrainConfig(**given)


def command_line(args: argparse.Namespace) -> str:
    """The ``fewshot train`` command that reproduces ``args`` (non-default hyperparameters only)."""
    parts = ["fewshot", "train"]
    for path in args.data:
        parts += ["--data", path]
    parts += ["--out", args.out]
    for s, t in zip(args.eval_support, args.eval_test):
        parts += ["--eval-support", s, "--eval-test", t]
    for s, t in zip(getattr(args, "val_support", []), getattr(args, "val_test", [])):
        parts += ["--val-support", s, "--val-test", t]
    if getattr(args, "general_pairs", None):
        parts += ["--general-pairs", args.general_pairs]
    if getattr(args, "compact", False):
        parts.append("--compact")
    preset = getattr(args, "preset", None)
    if preset:
        parts += ["--preset", preset]
    config = config_from_args(args)
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is None and f.name == "method" and not preset and not config.encoder:
            value = config.method  # always say which method ran
        if value is not None:
            flag = "--" + f.name.replace("_", "-")
            parts += [flag] if value is True else [f"--no-{flag[2:]}"] if value is False else [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def run_train(args: argparse.Namespace) -> int:
    """``fewshot train``: encode the CSVs once, meta-train, evaluate, write the folder; returns the exit code."""
    from ..encoders.encoder import Encoder
    from ..text import label_text
    from .data import default_cache_dir, embed_texts, read_labelled
    from .model_card import save_model
    from .trainer import get_method, inner_loop_for_trained_head, train_head

    config = config_from_args(args)
    config.validate()
    get_method(config.method)  # fail before encoding anything
    if len(args.eval_support) != len(args.eval_test):
        raise FewShotError(f"--eval-support and --eval-test come in pairs; got {len(args.eval_support)} "
                           f"and {len(args.eval_test)}")
    if config.encoder:
        return run_encoder_train(args, config)
    if any(getattr(args, name, None) for name in ("val_support", "resume", "compact", "general_pairs")):
        raise FewShotError("--val-support/--val-test, --resume, --compact and --general-pairs belong to --encoder "
                           "training")
    from .distill import flag_errors

    progress = not args.no_progress and not os.environ.get("FEWSHOT_NO_PROGRESS")
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    texts, labels = read_labelled(args.data, args.text_column, args.label_column)
    with flag_errors("--base"):
        base = Encoder(config.base, extra_layers=())  # heads are trained on the sentence embedding itself
        embeddings = embed_texts(texts, base, cache_dir=cache, progress=progress, desc="encoding training data")
    classes = sorted(set(labels))
    names = embed_texts([label_text(c.split("/")[-1]) for c in classes], base, cache_dir=cache)
    result = train_head(embeddings, labels, config, name_embeddings=dict(zip(classes, names)), progress=progress)
    out = Path(args.out)
    command = command_line(args)
    save_model(out, result, config, dim=base.dim, data_files=args.data, command=command)
    if config.method in META_METHODS:  # so that FewShotClassifier(out, adapt=method) works
        inner_loop_for_trained_head(config, base.dim).save(out)
    evaluations = []
    if args.eval_support:
        evaluations = _evaluate_pairs(args, config.base, out, labels, cache=cache, progress=progress)
        save_model(out, result, config, dim=base.dim, data_files=args.data, command=command,
                   results={"rule": "head (default)", "evaluations": evaluations})
    print(f"held-out classes: frozen {result.frozen_val:.4f} -> trained {result.best_val:.4f} "
          f"(best steps {result.best_steps} of {config.steps})", file=sys.stderr)
    _print_evaluations(evaluations, out)
    return 0


def label_overlap(train_labels: list[str], test_labels: list[str]) -> dict[str, int]:
    """How many of an evaluation's labels were training labels too (same name): the model card calls the
    evaluation in-domain when any was, cross-dataset when none was."""
    tested = set(map(str, test_labels))
    return {"labels": len(tested), "labels_trained": len(tested & set(map(str, train_labels)))}


def _print_evaluations(evaluations: list[dict[str, Any]], out: Path) -> None:
    """The end of a training run on stderr: each ``--eval-test`` file frozen vs trained, then the folder."""
    for r in evaluations:
        print(f"{r['test']}: frozen {r['frozen']:.4f} -> trained {r['trained']:.4f} "
              f"({r['trained'] - r['frozen']:+.4f})", file=sys.stderr)
    print(f"wrote {out}", file=sys.stderr)


def _evaluate_pairs(args: argparse.Namespace, base: str, out: Path, labels: list[str], *, cache: Path,
                    progress: bool) -> list[dict[str, Any]]:
    """Each ``--eval-support``/``--eval-test`` pair scored as a user gets it: the frozen ``base`` and the written
    folder ``out``, both through :class:`fewshot.encoders.encoder.Encoder` with the product's appended layers (the
    frozen encodings cached), with how many of its labels the training ``labels`` held."""
    from ..encoders.encoder import Encoder
    from .data import CachedEncoder, embed_texts, evaluate_csv

    product = Encoder(base)
    frozen = CachedEncoder(product, name=base)
    trained = Encoder(str(out))
    evaluations = []
    for (s, t), s_path, t_path in zip(_read_pairs(args.eval_support, args.eval_test, args),
                                      args.eval_support, args.eval_test):
        for part, what in ((s, "support"), (t, "test")):
            frozen.add(part[0], embed_texts(part[0], product, cache_dir=cache, progress=progress,
                                            desc=f"encoding {what}"))
        evaluations.append({"support": s_path, "test": t_path, "frozen": evaluate_csv(frozen, s, t),
                            "trained": evaluate_csv(trained, s, t), **label_overlap(labels, t[1])})
    return evaluations


def _read_pairs(supports: list[str], tests: list[str], args: argparse.Namespace
                ) -> list[tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]]:
    """``(support, test)`` texts and labels of paired CSVs."""
    from ..io.tables import read_labelled_table

    out = []
    for s_path, t_path in zip(supports, tests):
        sets = [read_labelled_table(p, args.text_column, args.label_column) for p in (s_path, t_path)]
        out.append((sets[0], sets[1]))
    return out


def run_encoder_train(args: argparse.Namespace, config: TrainConfig) -> int:
    """``fewshot train --encoder``: teacher embeddings (cached), train the top layers, write the folder,
    evaluate it against the frozen base (:mod:`fewshot.meta.distill`); returns the exit code."""
    import numpy as np

    from .augment import augment_texts
    from .data import default_cache_dir, read_labelled, read_sentence_pairs
    from .distill import CHECKPOINT, check_layers, student_model, student_with, teacher_vectors, train_encoder
    from .model_card import prepare_out, save_encoder_model

    val_support, val_test = getattr(args, "val_support", []), getattr(args, "val_test", [])
    if len(val_support) != len(val_test):
        raise FewShotError(f"--val-support and --val-test come in pairs; got {len(val_support)} and {len(val_test)}")
    progress = not args.no_progress and not os.environ.get("FEWSHOT_NO_PROGRESS")
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    pairs_file = getattr(args, "general_pairs", None)
    if bool(pairs_file) != bool(config.pairs_weight):
        raise FewShotError("--general-pairs and --pairs-weight go together: give both or neither")
    pairs = read_sentence_pairs(pairs_file) if pairs_file else None
    resume = bool(getattr(args, "resume", False))
    checkpoint = Path(args.out) / CHECKPOINT
    if checkpoint.is_file() and not resume:
        raise FewShotError(f"--out {args.out} holds the checkpoint of an unfinished run ({checkpoint}): pass --resume "
                           "to continue it, or remove the checkpoint or choose another --out to start afresh")
    if resume and not checkpoint.is_file():
        print(f"fewshot: note: --resume: {args.out} holds no checkpoint ({CHECKPOINT}); training starts at step 0",
              file=sys.stderr)
    texts, labels = read_labelled(args.data, args.text_column, args.label_column)
    model = student_model(config.base)
    check_layers(model, config)  # before the teacher's encoding and before --out is made
    # the teacher per file: the cache key is the file's own texts, shared with other runs and benchmarks
    teacher = None
    if config.distill_weight or config.structure_weight:
        teacher = np.concatenate([teacher_vectors(read_labelled([path], args.text_column, args.label_column)[0],
                                                  config.teacher, cache_dir=cache, progress=progress)
                                  for path in args.data])
    augmented = None
    if config.augment_weight:  # one EDA copy per text, embedded by the teacher (cached like the originals)
        copies = augment_texts(texts, config.seed, config.augment_delete, config.augment_swaps)
        augmented = (copies, teacher_vectors(copies, config.teacher, cache_dir=cache, progress=progress))
    created = not Path(args.out).exists()
    out = prepare_out(args.out, allowed=(CHECKPOINT,))
    compact = bool(getattr(args, "compact", False))  # float16 layers: the evaluation below scores what ships
    try:
        result = train_encoder(model, texts, labels, teacher, config,
                               eval_sets=_read_pairs(val_support, val_test, args), checkpoint=checkpoint,
                               resume=resume, progress=progress, half=compact, augmented=augmented, pairs=pairs)
    except BaseException as exc:
        _after_failure(out, created, checkpoint, config.steps, args, interrupted=isinstance(exc, KeyboardInterrupt))
        raise
    command = command_line(args)
    files = dict(data_files=[*args.data, *([pairs_file] if pairs_file else [])],
                 validation_files=list(dict.fromkeys([*val_support, *val_test])), command=command,
                 keep=(CHECKPOINT,), full_copy=not compact)
    student = student_with(model, result.state)
    save_encoder_model(out, student, result, config, **files)
    evaluations = []
    if args.eval_support:
        evaluations = _evaluate_pairs(args, config.base, out, labels, cache=cache, progress=progress)
        save_encoder_model(out, student, result, config, **files, results={"evaluations": evaluations})
    (out / CHECKPOINT).unlink(missing_ok=True)
    print(f"selection ({result.score_on}): frozen {result.frozen_score:.4f} -> trained {result.best_score:.4f} "
          f"(step {result.best_step} of {config.steps})", file=sys.stderr)
    _print_evaluations(evaluations, out)
    return 0


def resume_command(args: argparse.Namespace) -> str:
    """The command that continues the ``fewshot train --encoder`` run of ``args`` from its checkpoint."""
    extra = []
    for flag, name in (("--text-column", "text_column"), ("--label-column", "label_column"),
                       ("--cache-dir", "cache_dir")):
        if getattr(args, name, None):
            extra += [flag, getattr(args, name)]
    if getattr(args, "no_progress", False):
        extra.append("--no-progress")
    return " ".join([command_line(args), *(shlex.quote(p) for p in extra), "--resume"])


def _after_failure(out: Path, created: bool, checkpoint: Path, steps: int, args: argparse.Namespace, *,
                   interrupted: bool) -> None:
    """A failed or interrupted ``--encoder`` run: say where its checkpoint is and how to continue (interrupted),
    and remove ``out`` when this run created it and nothing was written into it."""
    if checkpoint.is_file():
        if interrupted:
            import torch

            try:
                step = f"step {torch.load(checkpoint, weights_only=False)['loop']['step']} of {steps}"
            except Exception:  # a checkpoint cut short by the interruption itself: still name it
                step = "the last checkpoint"
            print(f"fewshot: note: {checkpoint} holds {step}; continue with: {resume_command(args)}",
                  file=sys.stderr)
        return
    if interrupted:
        print(f"fewshot: note: no checkpoint was written yet (one every --checkpoint-every "
              f"{config_from_args(args).checkpoint_every} steps); nothing to resume", file=sys.stderr)
    if created and out.is_dir() and not any(out.iterdir()):
        out.rmdir()
