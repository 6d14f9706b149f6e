"""The Evaluate tab's logic without Gradio: one scoring pass over a labelled CSV, then everything a person
acts on (per-label precision / recall / F1 worst first, the most-confused pairs, a confusion view of the
labels with most errors, a downloadable report) and the operating point of the unknown rule (the curve of
in-scope accuracy against out-of-scope recall, or accuracy against coverage, from
:func:`fewshot.unknown.operating_curve`). The measures and the unknown rule's answers are the library's
(:func:`fewshot.metrics.evaluate_predictions`, :func:`~fewshot.metrics.per_label_scores`,
:func:`~fewshot.metrics.apply_score_threshold`); this module arranges them into tables and figures.

Rows whose gold label is the classifier's ``unknown_label`` are out-of-scope rows: right when answered
unknown. The headline gives accuracy both as the labels alone decide and with the unknown rule in use; the
tables (per label, pairs, errors, confusion, report) show what the app answers, i.e. with the rule in use
(the threshold chosen on the tab, else the automatic one). The result of a pass is a plain dict kept in
the session's ``gr.State`` (never shared), so moving the slider or clicking a pair re-encodes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import FewShotError
from ..io.tables import row_number
from ..metrics import NO_UNKNOWN
from ..progress import ProgressFn
from ..text import label_name
from ..batch_reading import reads_together
from . import downloads
from . import session_classifier as sc
from . import state as st

if TYPE_CHECKING:
    from ..classifier import FewShotClassifier

TOP_CONFUSION = 20
"""Labels in the confusion view: the ones with most errors (a 150-label matrix is unreadable)."""
TOP_PAIRS = 50
ERROR_COLUMNS = ["text", "gold", "predicted"]
PER_LABEL_COLUMNS = ["label", "F1", "precision", "recall", "n", "most often predicted as"]
PAIR_COLUMNS = ["true label", "predicted as", "rows", "share"]  # share: of the true label's rows
SKIPPED_ROWS_NAMED = 5
"""Skipped rows (without a text or a label) named by number in the results; the rest are counted."""
SCORE_BOUND = st.SCORE_BOUND
"""Thresholds a request may set lie within +-SCORE_BOUND (in-scope scores are logits or similarities)."""


def run(clf: FewShotClassifier, df: pd.DataFrame, text_col: str, label_col: str,
        progress: ProgressFn | None = None, rule: sc.Unknown | None = None, batch_aware: bool = False
        ) -> dict[str, Any]:
    """Score ``clf`` once on two columns of ``df``: predictions without the unknown rule, in-scope scores and
    the automatic threshold; the rest of this module works from the returned dict. A multi-label classifier's
    pass is :func:`run_multi` (``rule``: the unknown rule its answers use). ``batch_aware``: the rows' in-scope
    scores read together, as Batch does with that option."""
    for col in (text_col, label_col):
        if col not in df.columns:
            raise FewShotError(f"there is no column {col!r}; the columns are {list(map(str, df.columns))}")
    if text_col == label_col:
        raise FewShotError("the text column and the label column must differ")
    keep = (df[text_col].str.strip() != "") & (df[label_col].str.strip() != "")
    sub = df[keep]
    skips = skipped_rows(keep)
    if sub.empty:
        raise FewShotError(f"no row has both a text in {text_col!r} and a label in {label_col!r}")
    if sc.is_multi_classifier(clf):
        if batch_aware:
            raise FewShotError("reading the rows together is for single-label classifiers; untick it to evaluate "
                               "this multi-label label set")
        return {**run_multi(clf, sub, text_col, label_col, rule or unknown_rule(clf, True, 0.0), progress), **skips}
    texts = sub[text_col].str.slice(0, st.MAX_INPUT_CHARS).tolist()
    gold = [label_name(g) for g in sub[label_col]]
    labels, probs, scores = clf.predict_with_scores(texts, progress=progress, batch_aware=batch_aware, **NO_UNKNOWN)
    auto, note = sc.auto_threshold(clf)
    chosen = clf.config.score_threshold
    return {
        "texts": texts, "gold": gold, "pred": [str(p) for p in labels],
        "confidence": np.asarray(probs, dtype=np.float64).max(axis=1).round(4).tolist(),
        "scores": np.asarray(scores, dtype=np.float64).tolist(),
        "unknown_label": clf.config.unknown_label, "auto": auto, "auto_note": note,
        "chosen": None if chosen is None else float(chosen),
        "classes": [str(c) for c in clf.classes_], **skips,
        "batch_aware": bool(batch_aware) and reads_together(len(texts)),
    }


def skipped_rows(keep: pd.Series) -> dict[str, Any]:
    """``skipped`` (how many rows ``keep`` leaves out) and ``skipped_rows`` (the first
    :data:`SKIPPED_ROWS_NAMED` of them as a spreadsheet numbers the file, :func:`fewshot.io.tables.row_number`)."""
    left = np.flatnonzero(~np.asarray(keep, dtype=bool))
    return {"skipped": int(len(left)), "skipped_rows": [row_number(i) for i in left[:SKIPPED_ROWS_NAMED]]}


def set_cell(labels: Any, unknown_label: str) -> str:
    """One comparable cell for a label set: its labels sorted and joined with ``; `` (``unknown_label`` when
    empty), so that two equal sets give the same cell."""
    return st.CELL_SEPARATOR.join(sorted(labels)) or unknown_label


def run_multi(clf: FewShotClassifier, sub: pd.DataFrame, text_col: str, label_col: str, rule: sc.Unknown,
              progress: ProgressFn | None = None) -> dict[str, Any]:
    """:func:`run` for a multi-label classifier: the gold cells hold ``;``-separated labels (a text on several
    rows carries all their labels; a cell ``unknown`` expects no label), the answers use ``rule``. Gold and
    predicted sets are kept as comparable cells (:func:`set_cell`), so the error and pair tables work as for
    one label; :func:`summary` and :func:`per_label` score the sets (micro / macro F1, subset accuracy)."""
    from ..multilabel import group_label_rows

    unknown_label = clf.config.unknown_label
    texts, sets = group_label_rows(sub[text_col].str.slice(0, st.MAX_INPUT_CHARS).tolist(), sub[label_col].tolist(),
                                   no_label=unknown_label)
    labels, probs, scores = clf.predict_with_scores(texts, progress=progress, **rule.options)
    return {
        "multi": True, "texts": texts, "gold_sets": sets, "pred_sets": [list(p) for p in labels],
        "gold": [set_cell(s, unknown_label) for s in sets], "pred": [set_cell(p, unknown_label) for p in labels],
        "confidence": np.asarray(probs, dtype=np.float64).max(axis=1).round(4).tolist(),
        "scores": np.asarray(scores, dtype=np.float64).tolist(),
        "unknown_label": unknown_label, "auto": None, "auto_note": "", "chosen": None,
        "rule": rule.mode, "rule_threshold": rule.threshold, "label_thresholds": clf.label_thresholds_,
        "classes": [str(c) for c in clf.classes_],
    }


def multi_summary(res: dict[str, Any]) -> dict[str, Any]:
    """Multi-label headline: :func:`fewshot.multilabel.multilabel_scores` (micro / macro F1, subset accuracy, per
    label) of the answered sets, the rows answered unknown, the errors (sets not matched exactly)."""
    from ..multilabel import multilabel_scores

    # the labels the file's true sets or the answers name (as single-label mode lists the file's labels): a label
    # of the label set that the file never mentions and that is never answered is not averaged in at F1 0
    seen = sorted({lab for s in (*res["gold_sets"], *res["pred_sets"]) for lab in s})
    scores = multilabel_scores(res["gold_sets"], res["pred_sets"], labels=seen)
    known = set(res["classes"])
    scores.update(
        answered_unknown=sum(not p for p in res["pred_sets"]),
        errors=sum(g != p for g, p in zip(res["gold"], res["pred"])),
        several=sum(len(s) > 1 for s in res["gold_sets"]),
        unseen_labels=sorted({lab for s in res["gold_sets"] for lab in s} - known))
    return scores


def _arrays(res: dict[str, Any], rule: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """gold, predicted (with the unknown rule in use, unless ``rule`` is False), scores, out-of-scope mask."""
    gold = np.asarray(res["gold"], dtype=object)
    rule = rule and not res.get("multi")  # a multi-label pass answered with its rule already
    pred = np.asarray(answers(res) if rule else res["pred"], dtype=object)
    oos = gold == res["unknown_label"]
    return gold, pred, np.asarray(res["scores"], dtype=np.float64), oos


def active_threshold(res: dict[str, Any]) -> float | None:
    """The in-scope-score threshold the session answers with: the chosen operating point, else the automatic one."""
    return res["chosen"] if res.get("chosen") is not None else res.get("auto")


def answers(res: dict[str, Any]) -> list[str]:
    """What the app answers for the rows: :func:`fewshot.metrics.apply_score_threshold` at the threshold in use."""
    from ..metrics import apply_score_threshold

    return apply_score_threshold(res["pred"], res["scores"], active_threshold(res), res["unknown_label"])


SHOWN_KEYS = {"accuracy_rule": "accuracy", "in_scope_accuracy_rule": "in_scope_accuracy",
              "oos_recall": "unknown_recall", "answered_unknown": "answered_unknown", "errors": "errors"}
"""The headline's names of :func:`fewshot.metrics.evaluate_predictions`'s ``with_unknown`` measures."""


def summary(res: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers (:func:`fewshot.metrics.evaluate_predictions`): accuracy and macro-F1 without the unknown
    rule, and accuracy with it; with rows labelled unknown, how well the scores separate them for any threshold
    (:func:`fewshot.metrics.separation`). A measure without rows to count (in-scope accuracy of a file labelled
    all unknown) is None, which the headline prints as ``n/a``."""
    from ..metrics import evaluate_predictions

    threshold = active_threshold(res)
    m = evaluate_predictions(res["gold"], res["pred"], res["scores"], threshold=threshold,
                             unknown_label=res["unknown_label"])
    ruled = m["with_unknown"]
    out = {"n": m["n"], "n_oos": m["n_unknown"], "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
           "threshold": threshold, "mode": "chosen" if res.get("chosen") is not None else "auto"}
    out |= {shown: ruled[key] for shown, key in SHOWN_KEYS.items()}
    out["unseen_labels"] = sorted(set(res["gold"]) - set(res["classes"]) - {res["unknown_label"]})
    return out | m.get("separation", {})


def per_label(res: dict[str, Any]) -> pd.DataFrame:
    """Precision, recall, F1 and count per gold label (:func:`fewshot.metrics.per_label_scores`), worst F1 first
    (ties: more rows first), and the label each one is most often mistaken for
    (:func:`fewshot.metrics.most_confused_with`; multi-label: per label over the sets, and the label most often
    answered in its place when it is missed)."""
    from ..metrics import most_confused_with, per_label_scores

    if res.get("multi"):
        return _per_label_multi(res)
    gold, pred = res["gold"], answers(res)
    scores, wrong = per_label_scores(gold, pred), most_confused_with(gold, pred)
    df = pd.DataFrame({"label": scores["label"], "F1": scores["f1"].round(3), "precision": scores["precision"].round(3),
                       "recall": scores["recall"].round(3), "n": scores["n"],
                       "most often predicted as": [wrong.get(lab, "") for lab in scores["label"]]})
    return df.sort_values(["F1", "n", "label"], ascending=[True, False, True], kind="stable").reset_index(drop=True)


MISSED = "(missed)"
"""Multi-label: what a missed label was "predicted as" when the answer held only other true labels."""


def _per_label_multi(res: dict[str, Any]) -> pd.DataFrame:
    scores = multi_summary(res)["per_label"]
    instead: dict[str, dict[str, int]] = {}
    for gold, pred in zip(res["gold_sets"], res["pred_sets"]):
        extra = [p for p in pred if p not in gold]
        for lab in gold:
            if lab not in pred:
                for other in extra or ([MISSED] if pred else [res["unknown_label"]]):
                    instead.setdefault(lab, {})[other] = instead.get(lab, {}).get(other, 0) + 1
    rows = [{"label": lab, "F1": round(m["f1"], 3), "precision": round(m["precision"], 3),
             "recall": round(m["recall"], 3), "n": m["support"],
             "most often predicted as": max(sorted(instead[lab]), key=instead[lab].get) if lab in instead else ""}
            for lab, m in scores.items()]
    df = pd.DataFrame(rows, columns=PER_LABEL_COLUMNS)
    return df.sort_values(["F1", "n", "label"], ascending=[True, False, True], kind="stable").reset_index(drop=True)


def confused_pairs(res: dict[str, Any], top: int = TOP_PAIRS) -> pd.DataFrame:
    """The (true, predicted) pairs with most misclassified rows, most first."""
    gold, pred, _, _ = _arrays(res)
    bad = gold != pred
    if not bad.any():
        return pd.DataFrame(columns=PAIR_COLUMNS)
    counts = pd.DataFrame({"g": gold[bad], "p": pred[bad]}).value_counts().reset_index(name="rows")
    totals = pd.Series(gold).value_counts()
    counts["share"] = [f"{r / totals[g]:.0%}" for g, r in zip(counts["g"], counts["rows"])]
    counts = counts.sort_values(["rows", "g", "p"], ascending=[False, True, True], kind="stable").head(top)
    counts.columns = PAIR_COLUMNS
    return counts.reset_index(drop=True)


def errors(res: dict[str, Any], true: str | None = None, predicted: str | None = None) -> pd.DataFrame:
    """Misclassified rows (text, gold, predicted), optionally only one confused pair."""
    gold, pred, _, _ = _arrays(res)
    bad = gold != pred
    if true is not None:
        bad &= gold == true
    if predicted is not None:
        bad &= pred == predicted
    texts = np.asarray(res["texts"], dtype=object)
    return pd.DataFrame({"text": texts[bad], "gold": gold[bad], "predicted": pred[bad]}, columns=ERROR_COLUMNS)


def confusion_figure(res: dict[str, Any], top: int = TOP_CONFUSION) -> Any:
    """A confusion matrix of the ``top`` labels with most errors (as true or predicted label), readable at any
    number of labels; errors with any other label are summed in an "(other)" column."""
    from matplotlib.figure import Figure

    if res.get("multi"):
        return f1_figure(res, top)
    gold, pred, _, _ = _arrays(res)
    bad = gold != pred
    involved = pd.concat([pd.Series(gold[bad]), pd.Series(pred[bad])]).value_counts()
    all_labels = sorted(set(gold) | set(pred))
    if len(all_labels) <= top:
        labels = all_labels
    else:
        labels = sorted(involved.index[:top]) if len(involved) else all_labels[:top]
    index = {lab: i for i, lab in enumerate(labels)}
    other = len(all_labels) > len(labels)
    cm = np.zeros((len(labels), len(labels) + other), dtype=int)
    for g, p in zip(gold, pred):
        if g in index:
            cm[index[g], index.get(p, len(labels))] += 1
    cols = labels + (["(other)"] if other else [])
    size = min(9.0, 3.0 + 0.42 * len(cols))
    fig = Figure(figsize=(size + 1.5, size), dpi=90)
    ax = fig.add_subplot()
    ax.imshow(np.log1p(cm), cmap="Blues", aspect="auto")
    short = [lab if len(lab) <= 22 else lab[:21] + "…" for lab in cols]
    ax.set_xticks(range(len(cols)), short, rotation=55, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), short[:len(labels)], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top_count = np.log1p(cm.max()) if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if np.log1p(cm[i, j]) > top_count / 2 else "black")
    title = (f"The {len(labels)} labels with most errors (of {len(all_labels)})" if other
             else "Confusion matrix")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def f1_figure(res: dict[str, Any], top: int = TOP_CONFUSION) -> Any:
    """Multi-label: precision, recall and F1 of the ``top`` worst labels as bars (a confusion matrix has no
    meaning when a text carries several labels)."""
    from matplotlib.figure import Figure

    table = per_label(res).head(top).iloc[::-1]
    height = min(9.0, 2.0 + 0.32 * len(table))
    fig = Figure(figsize=(6.4, height), dpi=90)
    ax = fig.add_subplot()
    y = np.arange(len(table))
    ax.barh(y + 0.27, table["F1"], height=0.27, color="#3b6fb6", label="F1")
    ax.barh(y, table["precision"], height=0.27, color="#9db7dc", label="precision")
    ax.barh(y - 0.27, table["recall"], height=0.27, color="#d9a36b", label="recall")
    names = [lab if len(lab) <= 22 else lab[:21] + "…" for lab in table["label"]]
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlim(0, 1.02)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, frameon=False)
    n = len(res["classes"])
    ax.set_title("Per label, worst F1 at the top" + (f" ({len(table)} of {n})" if n > len(table) else ""),
                 fontsize=10)
    fig.tight_layout()
    return fig


# ---- the operating point ---------------------------------------------------------------------------
def curve(res: dict[str, Any], extra: tuple[float, ...] = ()) -> pd.DataFrame:
    """:func:`fewshot.unknown.operating_curve` on the scored rows (out-of-scope: rows labelled unknown)."""
    from ..unknown import operating_curve

    gold, pred, scores, oos = _arrays(res, rule=False)
    right = (gold == pred) & ~oos
    points = tuple(t for t in (res.get("auto"), res.get("chosen"), *extra) if t is not None)
    return operating_curve(scores, right, oos if oos.any() else None, thresholds=points)


def point(res: dict[str, Any], threshold: float) -> dict[str, float]:
    """The curve's row at ``threshold`` (coverage, in-scope accuracy, out-of-scope recall, ...)."""
    table = curve(res, (float(threshold),))
    row = table.iloc[int(np.argmin(np.abs(table["threshold"].to_numpy() - threshold)))]
    return {k: float(v) for k, v in row.items()}


def slider_range(res: dict[str, Any]) -> tuple[float, float, float]:
    """(minimum, maximum, value) for the threshold slider: the finite scores' range and the threshold in use."""
    scores = np.asarray(res["scores"], dtype=np.float64)
    finite = scores[np.isfinite(scores)]
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    value = active_threshold(res)
    value = low if value is None else float(value)
    low, high = min(low, value), max(high, value)
    pad = max((high - low) * 0.02, 1e-3)
    low, high = max(low - pad, -SCORE_BOUND), min(high + pad, SCORE_BOUND)
    return round(low, 3), round(high, 3), round(value, 3)


def axes(res: dict[str, Any]) -> tuple[str, str, str, str]:
    """(x column, y column, x title, y title) of the curve: recall against in-scope accuracy with out-of-scope
    rows, else coverage against accuracy among the answered texts."""
    if any(g == res["unknown_label"] for g in res["gold"]):
        return "oos_recall", "accuracy_kept", "out-of-scope rows answered unknown (recall)", \
            "in-scope accuracy (unknown counts wrong)"
    return "coverage", "answered_accuracy", "share of texts answered with a label (coverage)", \
        "accuracy of the answered texts"


def curve_figure(res: dict[str, Any], picked: float | None = None) -> Any:
    """The trade-off curve with the automatic point, the chosen one and the slider's ``picked`` one marked."""
    from matplotlib.figure import Figure

    x, y, xt, yt = axes(res)
    table = curve(res, () if picked is None else (float(picked),))
    fig = Figure(figsize=(6.4, 4.2), dpi=90)
    ax = fig.add_subplot()
    ax.plot(table[x], table[y], color="#3b6fb6", lw=1.6)
    marks = [("automatic", res.get("auto"), "o", "#d9822b"), ("in use (chosen)", res.get("chosen"), "s", "#2a9d3f"),
             ("slider", picked, "D", "#b6283b")]
    for name, t, marker, color in marks:
        if t is None:
            continue
        p = point(res, t)
        ax.plot([p[x]], [p[y]], marker=marker, color=color, ms=9, ls="none", label=f"{name} ({t:.2f})")
    ax.set_xlabel(xt, fontsize=9)
    ax.set_ylabel(yt, fontsize=9)
    ax.set_xlim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Unknown rule: what each threshold would do on this file", fontsize=10)
    fig.tight_layout()
    return fig


def point_md(res: dict[str, Any], threshold: float) -> str:
    """One line: what answering unknown below ``threshold`` does on the evaluated rows."""
    p = point(res, threshold)
    parts = [f"threshold **{threshold:.2f}**: {p['coverage']:.0%} of rows answered with a label",
             f"in-scope accuracy {p['accuracy_kept']:.1%}"]
    if not np.isnan(p["oos_recall"]):
        parts.append(f"out-of-scope recall {p['oos_recall']:.0%}")
    if not np.isnan(p["answered_accuracy"]):
        parts.append(f"accuracy of the answered {p['answered_accuracy']:.1%}")
    return " · ".join(parts)


# ---- the report ------------------------------------------------------------------------------------
def write_report(res: dict[str, Any], source_name: str) -> list[str]:
    """Two CSVs (formula cells neutralised): per-label metrics, and every row's prediction with the errors
    first (text, gold, predicted with the unknown rule in use, correct, confidence, in-scope score, and the
    best label without the rule)."""
    folder = downloads.out_dir()
    stem = downloads.safe_stem(source_name, "evaluation")
    labels_path = folder / f"{stem}_per_label.csv"
    downloads.write_download(per_label(res), labels_path)
    gold, pred, scores, _ = _arrays(res)
    rows = pd.DataFrame({"text": res["texts"], "gold": gold, "predicted": pred, "correct": gold == pred,
                         "confidence": res["confidence"], "in_scope_score": np.round(scores, 4),
                         "best_label": res["pred"]})
    rows = rows.sort_values("correct", kind="stable")
    rows_path = folder / f"{stem}_predictions.csv"
    downloads.write_download(rows, rows_path)
    return [str(labels_path), str(rows_path)]


# ---- the session's operating point -----------------------------------------------------------------
@dataclass(frozen=True)
class ChosenPoint(sc.Unknown):
    """The unknown rule of a session whose operating point was chosen on Evaluate: in-scope score below
    ``threshold`` (the classifier's ``score_threshold``) answers unknown."""

    mode: str = "point"

    @property
    def options(self) -> dict[str, Any]:
        return {"min_confidence": None, "auto_unknown": False, "score_threshold": self.threshold}


def unknown_rule(clf: FewShotClassifier, auto: Any, threshold: Any) -> sc.Unknown:
    """:func:`fewshot.app.session_classifier.unknown_rule`, except that with the automatic unknown on, a chosen
    operating point (``clf.config.score_threshold``, set by *Use this threshold*) replaces the automatic threshold."""
    chosen = getattr(clf.config, "score_threshold", None)
    if auto and isinstance(auto, (bool, int, float)) and chosen is not None:
        return ChosenPoint("point", float(chosen))
    return sc.unknown_rule(clf, auto, threshold)


def check_threshold(value: Any) -> float:
    """A threshold from a request (an in-scope score): a finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise FewShotError(f"the threshold must be a number (an in-scope score), got {value!r:.40}") from exc
    if not np.isfinite(number) or abs(number) > SCORE_BOUND:
        raise FewShotError(f"the threshold must be a finite number between -{SCORE_BOUND:g} and {SCORE_BOUND:g} "
                           f"(an in-scope score), got {value!r:.40}")
    return number
