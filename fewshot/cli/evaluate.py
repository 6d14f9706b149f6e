"""``fewshot evaluate``: accuracy, F1 and unknown detection on a labelled test file, the ``--curve`` CSV, and the
multi-label measures."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import FewShotError
from ..progress import tqdm_progress
from .columns import _columns, _text_column
from .fitting import _check_batch_aware, _classifier_timed
from .notes import _note, _note_batch_aware, _progress_bar, _rows


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``fewshot evaluate``: accuracy over the real labels; with ``--oos`` or test rows labelled unknown,
    unknown-detection metrics."""
    from ..io.tables import check_filled, read_table
    from ..metrics import NO_UNKNOWN, evaluate, evaluate_oos
    from ..text import label_name

    if args.curve:
        from ..io.output import check_output_file

        check_output_file(Path(args.curve), "--curve", "curve.csv")
    if args.multi_label:  # refused before any file is read or model loaded (a saved classifier's mode: below)
        _check_multilabel_evaluate(args)
    text_col, label_col = _columns(args, args.test)
    test = _with_text(read_table(args.test, [text_col, label_col], args.encoding, may_be_empty=(text_col, label_col)),
                      text_col, args.test)
    oos = None
    if args.oos:
        oos_col = _text_column(args, args.oos)
        oos = _with_text(read_table(args.oos, [oos_col], args.encoding, may_be_empty=(oos_col,)), oos_col, args.oos)
        oos = oos[oos_col]
    clf, fit_seconds, tuned = _classifier_timed(args)
    _check_batch_aware(args, clf)
    skipped = {"skipped_rows": test.attrs["skipped_rows"]}
    if clf.config.multi_label:
        return _evaluate_multilabel(args, clf, test[text_col].tolist(), test[label_col].tolist(), fit_seconds,
                                    skipped)
    check_filled(args.test, test, [label_col])  # one label per row: an empty cell is a mistake
    texts, gold = test[text_col].tolist(), [label_name(g) for g in test[label_col]]  # as fit reads labels
    oos_file = oos.tolist() if oos is not None else []
    config = clf.config
    # out-of-scope texts: the --oos file's and the test rows labelled unknown (texts none of the labels covers)
    outside = [str(g) == config.unknown_label for g in gold]
    inside = [i for i, o in enumerate(outside) if not o]
    oos_rows = [len(texts) + j for j in range(len(oos_file))] + [i for i, o in enumerate(outside) if o]
    if oos_rows and not inside:
        raise FewShotError(f"every test row is labelled {config.unknown_label!r}: the out-of-scope measures need "
                           "in-scope rows too")
    batch = texts + oos_file
    started = time.perf_counter()  # one reading of the test rows and --oos texts (together with --batch-aware)
    with _progress_bar("classifying", total=len(batch)) as bar:
        _, probs, scores = clf.predict_with_scores(batch, progress=tqdm_progress(bar), batch_aware=args.batch_aware,
                                                   **NO_UNKNOWN)
    seconds = time.perf_counter() - started
    test_reading = probs[:len(texts)], scores[:len(texts)]
    result = evaluate(clf, texts, gold, unknown=False, reading=test_reading)  # accuracy over the real labels
    result.pop("predictions")
    result = {"accuracy": result.pop("accuracy"), "macro_f1": result.pop("macro_f1"), "n": result.pop("n"),
              "fit_seconds": fit_seconds, **result, "predict_seconds": seconds, "model": clf.encoder.name,
              "rule": clf.config.rule, **skipped}
    result["unseen_labels"] = _note_unseen_labels(clf, [str(g) for g in gold], args.test)
    if config.min_confidence is not None or config.uses_score or any(outside):  # as `classify` answers
        ruled = evaluate(clf, texts, gold, reading=test_reading)
        result["with_unknown"] = {k: ruled[k] for k in ("accuracy", "macro_f1", "in_scope_accuracy", "answered",
                                                        "n_unknown", "unknown_recall", "per_label_f1")}
    if oos_rows:
        rows = inside + oos_rows
        result |= evaluate_oos(clf, [texts[i] for i in inside], [gold[i] for i in inside],
                               [batch[i] for i in oos_rows], batch_aware=args.batch_aware,
                               reading=(probs[rows], scores[rows]))
    _note_batch_aware(args, len(batch))
    if args.curve:
        _write_curve(args, clf, batch, [str(g) for g in gold] + [config.unknown_label] * len(oos_file),
                     (probs, scores))
    if (report := tuned or clf.finetuned_) is not None:  # --finetune's report, kept or not; else a saved one's
        from dataclasses import asdict

        result["finetune"] = asdict(report)
    if args.json:
        print(json.dumps(result))
        return 0
    n_unknown = result["counts"].get(config.unknown_label, 0)
    rows = (f"{result['n_labels']} labels and {n_unknown} {config.unknown_label!r} rows; each row answered with "
            "a label" if n_unknown else f"{result['n_labels']} labels")
    print(f"accuracy   {result['accuracy']:.4f}   ({result['n']} texts, {rows})")
    print(f"macro-F1   {result['macro_f1']:.4f}" + (f"   (over the {result['n_labels']} labels)" if n_unknown else ""))
    print(f"fit        {fit_seconds:.2f} s (encoding examples included)" if not args.classifier else
          "fit        none (loaded from --classifier)")
    print(f"predict    {result['predict_seconds']:.2f} s ({len(batch):,} texts)")
    if "with_unknown" in result:
        w = result["with_unknown"]
        line = (f"with the unknown rule: accuracy {w['accuracy']:.4f}  macro-F1 {w['macro_f1']:.4f}  "
                f"answered {w['answered']:.3f}")
        if w["in_scope_accuracy"] is not None:
            line += f"  in-scope accuracy {w['in_scope_accuracy']:.4f}"
        if w["n_unknown"]:
            line += f"  {config.unknown_label!r} rows answered so {w['unknown_recall']:.3f} of {w['n_unknown']}"
        print(line)
    if "oos_auroc" in result:
        print(f"out of scope: recall {result['oos_recall']:.3f}  precision {result['oos_precision']:.3f}  "
              f"AUROC {result['oos_auroc']:.3f}  in-scope accuracy {result['in_scope_accuracy']:.4f}  "
              f"threshold {result['threshold']:.3f}, {result['threshold_kind']}")
        if result["threshold_default"]:
            print("  no unknown option is set, so the lines above answer every row with a label; this line uses the "
                  "automatic threshold (--auto-unknown applies it to both)")
        print(f"  any threshold: recall {result['oos_recall_at_cost']:.3f} at a cost of at most "
              f"{100 * result['cost']:g} points of in-scope accuracy, FPR@95 {result['oos_fpr_at_95']:.3f}"
              + ("  (read together)" if result["batch_aware"] else ""))
        if not args.batch_aware:
            print("  one text at a time; --batch-aware reads the rows together, where an intent no label covers "
                  "that recurs separates better")
    ruled_f1 = result.get("with_unknown", {}).get("per_label_f1")  # as classify answers, when a rule is in play
    rows = sorted((ruled_f1 or result["per_label_f1"]).items(), key=lambda item: (item[1], item[0]))
    width = max([5, *(len(lab[:40]) for lab, _ in rows)])
    print(f"\nper label{' with the unknown rule' if ruled_f1 else ''}, worst F1 first:\n"
          f"  {'label':{width}s}     F1      n")
    for lab, f1 in rows:
        print(f"  {lab[:40]:{width}s}  {f1:.3f} {result['counts'][lab]:6d}")
    return 0


def _write_curve(args: argparse.Namespace, clf: Any, texts: list[str], gold: list[str],
                 reading: tuple[Any, Any] | None) -> None:
    """``evaluate --curve``: the operating curve as a CSV, and on stderr what to do with it."""
    from ..metrics import evaluate_curve

    curve = evaluate_curve(clf, texts, gold, reading=reading)
    rates = ["coverage", "accuracy_kept", "answered_accuracy", "oos_recall", "accuracy"]
    curve[rates] = curve[rates].round(4)  # the thresholds stay exact: a rounded one could move a text across
    curve.to_csv(args.curve, index=False)
    print(f"wrote the operating curve ({len(curve):,} thresholds) to {args.curve}: pick a row and pass its "
          "threshold as --score-threshold to classify or fit", file=sys.stderr)


def _note_unseen_labels(clf: Any, gold: list[str], path: str) -> list[str]:
    """The test file's labels that no example has (a typo, or a label left out of the examples), said on stderr:
    their rows can only be answered wrong. Returned for the JSON report."""
    known, counts = {*map(str, clf.classes_), clf.config.unknown_label}, {}
    for lab in gold:
        if lab not in known:
            counts[lab] = counts.get(lab, 0) + 1
    if counts:
        from ..text import same_name_as

        def named_one(lab: str, n: int) -> str:
            same = same_name_as(lab, map(str, clf.classes_))
            return f"{lab!r} ({_rows(n)}{f'; did you mean {same!r}?' if same else ''})"

        named = ", ".join(named_one(lab, n) for lab, n in sorted(counts.items())[:10])
        more = f" and {len(counts) - 10} more" if len(counts) > 10 else ""
        _note(f"labels in {path} that no example has: {named}{more}; their rows can only be answered wrong "
              f"(label them {clf.config.unknown_label!r} to count them as out of scope)")
    return sorted(counts)


def _with_text(df: Any, column: str, path: str) -> Any:
    """``df`` without its rows whose ``column`` is empty (nothing to classify; the app's Evaluate skips them too),
    said on stderr; their CSV row numbers in ``df.attrs["skipped_rows"]``."""
    from ..io.tables import row_number

    blank = df[column].str.strip() == ""
    rows = [row_number(i) for i in df.index[blank]]
    if rows and bool(blank.all()):
        raise FewShotError(f"{path}: column {column!r} is empty on every row; there is nothing to classify")
    if rows:
        shown = ", ".join(map(str, rows[:5])) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
        _note(f"skipped {_rows(len(rows))} of {Path(path).name} with an empty {column!r} cell (row {shown}): "
              "nothing to classify")
    kept = df[~blank].reset_index(drop=True)
    kept.attrs["skipped_rows"] = rows
    return kept


def _check_multilabel_evaluate(args: argparse.Namespace) -> None:
    """Refuse the single-label options of ``evaluate`` for a multi-label classifier, naming what to do instead."""
    if args.oos:
        raise FewShotError("--oos is not available with --multi-label; put the out-of-scope texts in --test "
                           "with an empty label cell")
    if args.curve:
        raise FewShotError("--curve is not available with --multi-label: each label has its own threshold")


def _evaluate_multilabel(args: argparse.Namespace, clf: Any, texts: list[str], labels: list[str], fit_seconds: float,
                         skipped: dict[str, list[int]]) -> int:
    """``fewshot evaluate --multi-label``: micro-F1, macro-F1, subset accuracy and per-label scores (the test
    CSV read like the examples: ';' cells, repeated rows merged; a text with an empty or 'unknown' cell expects no
    label)."""
    from ..multilabel import group_label_rows
    from ..multilabel.classifier_mode import evaluate as evaluate_multilabel

    _check_multilabel_evaluate(args)
    texts, label_sets = group_label_rows(texts, labels, no_label=clf.config.unknown_label)
    result = evaluate_multilabel(clf, texts, label_sets)
    result.pop("predictions")
    result["unseen_labels"] = _note_unseen_labels(clf, [lab for labs in label_sets for lab in labs], args.test)
    result = {"micro_f1": result.pop("micro_f1"), "macro_f1": result.pop("macro_f1"),
              "subset_accuracy": result.pop("subset_accuracy"), "n": result.pop("n"), "fit_seconds": fit_seconds,
              **result, "model": clf.encoder.name, "multi_label": True, **skipped}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"micro-F1         {result['micro_f1']:.4f}   ({result['n']} texts, {result['n_labels']} labels)")
    print(f"macro-F1         {result['macro_f1']:.4f}")
    print(f"subset accuracy  {result['subset_accuracy']:.4f}   (predicted set == true set)")
    print(f"fit              {fit_seconds:.2f} s (encoding examples included)" if not args.classifier else
          "fit              none (loaded from --classifier)")
    print(f"predict          {result['predict_seconds']:.2f} s")
    rows = sorted(result["per_label"].items(), key=lambda item: (item[1]["f1"], item[0]))
    width = max([5, *(len(lab[:40]) for lab, _ in rows)])
    print(f"\nper label, worst F1 first:\n  {'label':{width}s}     F1  precision  recall      n")
    for lab, row in rows:
        print(f"  {lab[:40]:{width}s}  {row['f1']:.3f}      {row['precision']:.3f}   {row['recall']:.3f} "
              f"{row['support']:6d}")
    return 0
