"""``fewshot train``: encode labelled CSVs once, meta-train a head, evaluate it, write a model folder.

:mod:`fewshot.cli` builds the one parser and calls :func:`add_train_arguments` and :func:`run_train`.
Importing this module is cheap (no torch): the parser of every command is built from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
from pathlib import Path

from ..errors import FewShotError
from .training_args import META_METHODS, TRAIN_METHODS, TrainConfig

DESCRIPTION = "Meta-train a head on frozen sentence embeddings from labelled CSVs and write a model folder."

_FLAG_HELP = {
    "method": "meta-training method: " + "; ".join(f"{name}: {text}" for name, text in TRAIN_METHODS.items()),
    "steps": "training steps", "n_way": "labels per episode (capped at the training labels)",
    "identity_decay": "L2 pull of the head back to the identity", "val_fraction": "share of labels held out",
    "inner_steps": "inner-loop steps of maml/fomaml/reptile", "inner_lr": "inner-loop learning rate of maml/fomaml",
    "reptile_inner_lr": "inner-loop learning rate of reptile",
    "seed": "random seed (data split, episodes, initialisation)",
}


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the arguments of ``fewshot train`` to ``parser`` (the ``train`` subparser of the CLI)."""
    if parser.description is None:
        parser.description = DESCRIPTION
    parser.add_argument("--data", action="append", required=True, metavar="CSV",
                        help="labelled training CSV (text,label); repeat for several")
    parser.add_argument("--out", required=True, help="model folder to write (e.g. models/NAME)")
    parser.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    parser.add_argument("--label-column", default="label", help="column holding the label (default: label)")
    parser.add_argument("--eval-support", action="append", default=[], metavar="CSV",
                        help="support CSV of an evaluation reported in the model card (pairs with --eval-test)")
    parser.add_argument("--eval-test", action="append", default=[], metavar="CSV", help="test CSV for --eval-support")
    parser.add_argument("--cache-dir", default=None,
                        help="where frozen embeddings are cached (default: $FEWSHOT_CACHE/embeddings or "
                             "~/.cache/fewshot/embeddings)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (also FEWSHOT_NO_PROGRESS=1)")
    parser.add_argument("--preset", choices=sorted(TrainConfig.PRESETS), default=None,
                        help="start from a named hyperparameter set; flags below override it. "
                             "'matching' is the recipe of the shipped models/default")
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
    preset = getattr(args, "preset", None)
    if preset:
        parts += ["--preset", preset]
    config = config_from_args(args)
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is None and f.name == "method" and not preset:
            value = config.method  # always say which method ran
        if value is not None:
            flag = "--" + f.name.replace("_", "-")
            parts += [flag] if value is True else [f"--no-{flag[2:]}"] if value is False else [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def run_train(args: argparse.Namespace) -> int:
    """``fewshot train``: encode the CSVs once, meta-train, evaluate, write the folder; returns the exit code."""
    from ..encoders.encoder import Encoder
    from ..encoders.heads import load_head
    from ..io.tables import read_table
    from ..text import label_text
    from .data import CachedEncoder, default_cache_dir, embed_texts, evaluate_csv, read_labelled
    from .model_card import save_model
    from .trainer import get_method, inner_loop_for_trained_head, train_head

    config = config_from_args(args)
    config.validate()
    get_method(config.method)  # fail before encoding anything
    if len(args.eval_support) != len(args.eval_test):
        raise FewShotError(f"--eval-support and --eval-test come in pairs; got {len(args.eval_support)} "
                           f"and {len(args.eval_test)}")
    progress = not args.no_progress and not os.environ.get("FEWSHOT_NO_PROGRESS")
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    texts, labels = read_labelled(args.data, args.text_column, args.label_column)
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
        trained = CachedEncoder(base, head=load_head(out, head_only=True), name=str(out))  # the fp16 weights
        frozen = CachedEncoder(base, name=config.base)
        for s_path, t_path in zip(args.eval_support, args.eval_test):
            frames = [read_table(p, [args.text_column, args.label_column]) for p in (s_path, t_path)]
            sets = [(f[args.text_column].tolist(), f[args.label_column].tolist()) for f in frames]
            for t, what in zip(sets, ("support", "test")):
                vecs = embed_texts(t[0], base, cache_dir=cache, progress=progress, desc=f"encoding {what}")
                frozen.add(t[0], vecs)
                trained.add(t[0], vecs)
            evaluations.append({"support": s_path, "test": t_path, "frozen": evaluate_csv(frozen, *sets),
                                "trained": evaluate_csv(trained, *sets)})
        save_model(out, result, config, dim=base.dim, data_files=args.data, command=command,
                   results={"rule": "head (default)", "evaluations": evaluations})
    print(f"held-out classes: frozen {result.frozen_val:.4f} -> trained {result.best_val:.4f} "
          f"(best steps {result.best_steps} of {config.steps})", file=sys.stderr)
    for r in evaluations:
        print(f"{r['test']}: frozen {r['frozen']:.4f} -> trained {r['trained']:.4f} "
              f"({r['trained'] - r['frozen']:+.4f})", file=sys.stderr)
    print(f"wrote {out}", file=sys.stderr)
    return 0
