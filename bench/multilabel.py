"""Multi-label development benchmark: two-intent texts built the MixATIS/MixSNIPS way, plus single-intent texts.

    python bench/multilabel.py                      # valid (choose settings) and test, 5 draws each
    python bench/multilabel.py --split valid        # development only
    python bench/multilabel.py --split test --model mpnet   # another encoder: multilabel_test_mpnet.{json,md}

Data (Qin et al. 2020, "AGIF: An Adaptive Graph-Interactive Framework for Joint Multiple Intent Detection
and Slot Filling", who built MixATIS/MixSNIPS by joining utterances of different intents with a
conjunction): from CLINC150 and HWU64,

- supports (per draw): 5 single-label ``train`` examples per label plus 10 two-label examples, each two
  ``train`` texts of different labels joined by a conjunction (" and ", " and also ", ", then ", ...);
- evaluation (fixed per dataset and split): ``--singles`` single-intent texts and ``--pairs`` two-intent
  joined texts from the ``valid`` or ``test`` split, labelled with the one or two intents.

Every method sees the same embeddings (``Encoder(--model)``, by default ``"minilm"``: MiniLM-L6 plus its
layer-4 mean-pooled state, L2-normalised; cached per model under ``--cache``) and the same draws. Metrics: micro-F1, macro-F1 over
the labels, subset accuracy (predicted set == true set). Rows: one-vs-rest logistic regression on the
embeddings (the baseline), and the variants of :class:`fewshot.multilabel.MultiLabelCore`.
Settings are chosen on ``valid``; ``test`` is reported. Writes ``--out`` (JSON) and a Markdown table next
to it. Skips cleanly (exit 0) when the data folder is missing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import common

DATASETS = ("clinc150", "hwu64")
"""In this order: a dataset's place seeds its draws."""
CONJUNCTIONS = (" and ", " and also ", ", then ", " and then ", ", also ", " as well as ")
"""How two intents are joined, MixATIS-style ("and" dominates there; a few more forms keep a model from
keying on one word)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = common.parser(__doc__.split("\n\n")[0], out=None)
    p.add_argument("--split", choices=["valid", "test", "both"], default="both")
    p.add_argument("--draws", type=int, default=5, help="support sets drawn per dataset")
    p.add_argument("--shots", type=int, default=5, help="single-label examples per label")
    p.add_argument("--multi", type=int, default=10, help="two-label examples in the support set")
    p.add_argument("--singles", type=int, default=500, help="single-intent evaluation texts")
    p.add_argument("--pairs", type=int, default=500, help="two-intent evaluation texts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method", action="append", default=None,
                   help="a row of the table by name (repeatable; default: every row)")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "fewshot" / "multilabel",
                   help="embedding cache folder")
    p.add_argument("--model", default="minilm",
                   help='encoder name as FewShotClassifier(model=...) takes it (default "minilm"; e.g. "mpnet"); '
                        'result files of another model get a _<model> suffix')
    p.add_argument("--groups", nargs="*", default=None, metavar="DATASET:GROUP",
                   help="narrow label sets instead of the whole datasets: each CLINC150 domain (15 intents) and "
                        "each HWU64 scenario with at least 4 intents is its own task (supports, two-intent texts "
                        "and evaluation texts within the group), or only the groups named (e.g. clinc150:home); "
                        "result files get a _groups suffix")
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS),
                   help="datasets to run (default: both); e.g. a model meta-trained on one dataset is scored "
                        "on the other only")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: shared machines)")
    p.add_argument("--fit-timing", action="store_true",
                   help="only time the default's fit with each logistic solver, interleaved on the same draws "
                        "(wall and CPU seconds; CPU time is what a shared machine's load disturbs least)")
    args = p.parse_args(argv)
    if args.out is None:
        stem = "multilabel" if args.split == "both" else f"multilabel_{args.split}"
        stem += "_groups" if args.groups is not None else ""
        suffix = "" if args.model == "minilm" else "_" + model_tag(args.model)
        args.out = common.RESULTS / f"{stem}{suffix}.json"
    return args


def model_tag(model: str) -> str:
    """A model name or folder path as one file-name part (result files, embedding caches)."""
    return "".join(c if c.isalnum() else "_" for c in model)


def read_split(data: Path, dataset: str, split: str,
               intents: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """The ``text,label`` rows of one split (only the rows of ``intents`` when given)."""
    df = common.read_split(data, dataset, split)
    if intents is not None:
        df = df[df["label"].isin(set(intents))]
    return df["text"].tolist(), df["label"].tolist()


def label_groups(data: Path, dataset: str, min_intents: int = 4) -> dict[str, tuple[str, ...]]:
    """Narrow label sets of one dataset: CLINC150's 10 domains (15 intents each), HWU64's scenarios (the
    label's prefix before ``_``) with at least ``min_intents`` intents."""
    if dataset == "clinc150":
        return dict(common.CLINC150_DOMAINS)
    _, labels = read_split(data, dataset, "train")
    groups: dict[str, list[str]] = {}
    for lab in sorted(set(labels)):
        groups.setdefault(lab.split("_", 1)[0], []).append(lab)
    return {g: tuple(labs) for g, labs in groups.items() if len(labs) >= min_intents}


def _rng(seed: int, dataset: str, part: int, group: int | None) -> np.random.Generator:
    """The random stream of one dataset (and label group) and part; the full label sets keep their streams."""
    key = [seed, DATASETS.index(dataset), part] + ([] if group is None else [1000 + group])
    return np.random.default_rng(key)


def join_two(rng: np.random.Generator, texts: list[str], labels: list[str], n: int,
             exclude: set[int] | None = None) -> tuple[list[str], list[list[str]]]:
    """``n`` texts made of two utterances of different labels joined by a random conjunction."""
    by_label: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        if exclude is None or i not in exclude:
            by_label.setdefault(lab, []).append(i)
    names = sorted(by_label)
    out_t: list[str] = []
    out_l: list[list[str]] = []
    while len(out_t) < n:
        a, b = rng.choice(len(names), size=2, replace=False)
        i = int(rng.choice(by_label[names[a]]))
        j = int(rng.choice(by_label[names[b]]))
        conj = CONJUNCTIONS[int(rng.integers(len(CONJUNCTIONS)))]
        out_t.append(texts[i].strip() + conj + texts[j].strip())
        out_l.append([names[a], names[b]])
    return out_t, out_l


def eval_set(data: Path, dataset: str, split: str, singles: int, pairs: int, seed: int,
             intents: Sequence[str] | None = None, group: int | None = None) -> tuple[list[str], list[list[str]]]:
    """The fixed evaluation texts of one dataset (or of its label group ``intents``, number ``group``) and
    split: single-intent texts, then two-intent texts."""
    texts, labels = read_split(data, dataset, split, intents)
    rng = _rng(seed, dataset, 1 if split == "test" else 2, group)
    pick = rng.choice(len(texts), size=min(singles, len(texts)), replace=False)
    if intents is not None:  # a small group has fewer single texts: as many two-intent texts as single ones
        pairs = min(pairs, len(pick))
    t = [texts[i] for i in pick]
    y = [[labels[i]] for i in pick]
    pt, pl = join_two(rng, texts, labels, pairs)
    return t + pt, y + pl


def support_draw(data: Path, dataset: str, draw: int, shots: int, multi: int, seed: int,
                 intents: Sequence[str] | None = None, group: int | None = None) -> tuple[list[str], list[list[str]]]:
    """One support set: ``shots`` single-label ``train`` examples per label + ``multi`` two-label ones
    (of the label group ``intents``, number ``group``, when given)."""
    texts, labels = read_split(data, dataset, "train", intents)
    rng = _rng(seed, dataset, 100 + draw, group)
    by_label: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(i)
    chosen: list[int] = []
    for lab in sorted(by_label):
        chosen.extend(int(i) for i in rng.choice(by_label[lab], size=shots, replace=False))
    t = [texts[i] for i in chosen]
    y = [[labels[i]] for i in chosen]
    mt, ml = join_two(rng, texts, labels, multi, exclude=set(chosen))
    return t + mt, y + ml


def window_spans(n_tokens: int, width: float = 0.5,
                 min_tokens: int = 3) -> list[tuple[int, int]]:
    """``[start, end)`` token spans of one text's sub-span windows (content tokens only, without the first
    and last special tokens); ``[]`` for a text too short."""
    from fewshot.multilabel.views import window_bounds

    return [(start + 1, end + 1) for start, end in window_bounds(n_tokens - 2, width, min_tokens)]


def token_window_views(model: Any, texts: Sequence[str], *, extra_layers: Sequence[int] = (4,),
                 head: Callable[[Any], Any] | None = None, width: float = 0.5,
                 min_tokens: int = 3, batch_size: int = 32) -> list[np.ndarray]:
    """Token-window views (a development variant; the classifier encodes word windows instead): per text a
    ``(1 + windows, d)`` float32 array, the whole-text vector then one mean-pool of token states per window.

    ``model``: a loaded sentence-transformers model with mean pooling whose config has
    ``output_hidden_states`` on (as the encoder loads it); ``head``: the encoder's trained head, if any,
    applied to each last-layer pool as to the sentence embedding. Each window keeps the text's first and
    last special tokens, as a short text would have them.
    """
    import torch

    out: list[np.ndarray | None] = [None] * len(texts)
    order = np.argsort([len(t) for t in texts], kind="stable")
    norm = torch.nn.functional.normalize
    with torch.inference_mode():
        for k in range(0, len(texts), batch_size):
            idx = order[k:k + batch_size]
            features = model.tokenize([texts[i] for i in idx])
            res = model(features)
            last = res["token_embeddings"].float()
            layers = [res["all_layer_embeddings"][j].float() for j in extra_layers]
            mask = features["attention_mask"]
            for r, i in enumerate(idx):
                n = int(mask[r].sum())
                spans = [torch.arange(n)]
                spans += [torch.cat([torch.tensor([0]), torch.arange(s, e), torch.tensor([n - 1])])
                          for s, e in window_spans(n, width, min_tokens)]
                vecs = []
                for sel in spans:
                    emb = last[r, sel].mean(0, keepdim=True)
                    if head is not None:
                        emb = head(emb)
                    parts = [norm(emb, dim=-1)[0], *(norm(h[r, sel].mean(0), dim=-1) for h in layers)]
                    vecs.append(norm(torch.cat(parts), dim=-1).numpy().astype(np.float32))
                out[i] = np.stack(vecs)
    return [v for v in out if v is not None]


class EmbeddingCache:
    """Text -> vector for one encoder, kept in one ``.npy`` + ``.json`` pair so reruns encode nothing."""

    def __init__(self, folder: Path, model: str = "minilm") -> None:
        self.folder = folder
        self.model = model
        self.vectors: dict[str, np.ndarray] = {}
        self.views: dict[str, np.ndarray] = {}
        self._encoder: Any = None
        self._stem = model_tag(common.weights_tag(model))  # a folder path is one file name
        self._path = folder / self._stem
        if self._path.with_suffix(".json").exists():
            keys = json.loads(self._path.with_suffix(".json").read_text())
            arr = np.load(self._path.with_suffix(".npy"), allow_pickle=False)
            self.vectors = dict(zip(keys, arr))
        vpath = folder / f"{self._stem}_views"
        if vpath.with_suffix(".json").exists():
            keys = json.loads(vpath.with_suffix(".json").read_text())
            flat = np.load(vpath.with_suffix(".npy"), allow_pickle=False)
            off = np.load(folder / f"{self._stem}_views_offsets.npy", allow_pickle=False)
            self.views = {k: flat[off[i]:off[i + 1]] for i, k in enumerate(keys)}

    def _load_encoder(self) -> Any:
        if self._encoder is None:
            try:
                from fewshot.encoders.encoder import Encoder
            except ImportError:  # the layout before fewshot/encoders/ held the encoder
                from fewshot.encoder import Encoder
            self._encoder = Encoder(self.model)
        return self._encoder

    def encode_views(self, texts: list[str], kind: str = "words") -> list[np.ndarray]:
        """Views of ``texts``: ``"words"`` = the whole-text vector plus the encoded word windows
        (:func:`fewshot.multilabel.views.text_windows`, what the classifier does); ``"tokens"`` = windows
        mean-pooled from the whole text's one forward pass (:func:`token_window_views`, cached)."""
        if kind == "words":
            from fewshot.multilabel.views import build_views, windows_of

            windows, counts = windows_of(texts)
            flat = self.encode(windows) if windows else np.zeros((0, self.encode(texts[:1]).shape[1]))
            return build_views(self.encode(texts), flat, counts)
        todo = sorted({t for t in texts if t not in self.views})
        if todo:
            enc = self._load_encoder()
            t0 = time.perf_counter()
            got = token_window_views(enc._model, todo, extra_layers=enc.extra_layers, head=enc._head)
            print(f"  token-window views of {len(todo)} texts in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            self.views.update(zip(todo, got))
            keys = list(self.views)
            np.save((self.folder / f"{self._stem}_views").with_suffix(".npy"),
                    np.concatenate([self.views[k] for k in keys]))
            np.save(self.folder / f"{self._stem}_views_offsets.npy",
                    np.r_[0, np.cumsum([len(self.views[k]) for k in keys])])
            (self.folder / f"{self._stem}_views.json").write_text(json.dumps(keys))
        return [self.views[t] for t in texts]

    def encode(self, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts`` (encoding only the ones not cached yet)."""
        todo = sorted({t for t in texts if t not in self.vectors})
        if todo:
            enc = self._load_encoder()
            t0 = time.perf_counter()
            vecs = enc.encode(todo)
            print(f"  encoded {len(todo)} texts in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            self.vectors.update(zip(todo, np.asarray(vecs, dtype=np.float32)))
            self.save()
        return np.stack([self.vectors[t] for t in texts])

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        np.save(self._path.with_suffix(".npy"), np.stack([self.vectors[k] for k in keys]))
        self._path.with_suffix(".json").write_text(json.dumps(keys))


def methods() -> dict[str, dict[str, Any]]:
    """Rows of the table: name -> :class:`fewshot.multilabel.MultiLabelConfig` settings, plus ``views``
    (``"words"``: word windows as the classifier encodes them, ``"tokens"``: token-state windows; absent:
    whole texts only)."""
    whole = {"at_least_one": False}
    return {
        "baseline: logistic C=1, threshold 0.5": {**whole, "logistic_c": 1.0, "threshold": 0.5},
        "logistic C=1000, threshold 0.5": {**whole, "threshold": 0.5},
        "logistic C=1000, CV threshold": {**whole},
        "prototype, CV threshold": {**whole, "method": "prototype"},
        "pairs (mixup heads), CV threshold": {**whole, "method": "pairs", "l2": 0.001},
        "logistic + word windows, vote all": {"views": "words", "view_vote": "all"},
        "logistic + token windows, vote top": {"views": "tokens"},
        "logistic + word windows, vote top, no at-least-one": {"views": "words", "at_least_one": False},
        "default: logistic + word windows, vote top": {"views": "words"},
        "default with one scikit-learn fit per label": {"views": "words", "solver": "sklearn"},
        "default + per-label thresholds": {"views": "words", "per_label": True},
        "default, cv_pairs 0.5": {"views": "words", "cv_pairs": 0.5},
        "logistic + word windows, vote top_windows": {"views": "words", "view_vote": "top_windows"},
    }


def evaluate(cfg: dict[str, Any], supports: list[tuple[np.ndarray, list[list[str]], list[str]]],
             x_eval: np.ndarray, y_eval: list[list[str]], t_eval: list[str], cache: EmbeddingCache) -> dict[str, Any]:
    """Fit on each support draw, score the evaluation set; mean and per-draw metrics (single and pair texts too)."""
    from fewshot.multilabel import MultiLabelConfig, MultiLabelCore, multilabel_scores

    rows = []
    two = np.array([len(y) == 2 for y in y_eval])
    cfg = dict(cfg)
    kind = cfg.pop("views", None)
    v_eval = cache.encode_views(t_eval, kind) if kind else None
    for xs, ys, ts in supports:
        t0 = time.perf_counter()
        core = MultiLabelCore(MultiLabelConfig(**cfg)).fit(xs, ys, cache.encode_views(ts, kind) if kind else None)
        fit_s = time.perf_counter() - t0
        pred = core.predict(x_eval, v_eval)
        s = multilabel_scores(y_eval, pred, labels=[str(c) for c in core.classes_])
        one = multilabel_scores([y for y, m in zip(y_eval, two) if not m], [p for p, m in zip(pred, two) if not m])
        pair = multilabel_scores([y for y, m in zip(y_eval, two) if m], [p for p, m in zip(pred, two) if m])
        rows.append({"micro_f1": s["micro_f1"], "macro_f1": s["macro_f1"], "subset_accuracy": s["subset_accuracy"],
                     "single_subset_accuracy": one["subset_accuracy"], "pair_subset_accuracy": pair["subset_accuracy"],
                     "empty": float(np.mean([len(p) == 0 for p in pred])),
                     "mean_labels": float(np.mean([len(p) for p in pred])), "fit_s": fit_s})
    keys = list(rows[0])
    return {"mean": {k: float(np.mean([r[k] for r in rows])) for k in keys},
            "sd": {k: float(np.std([r[k] for r in rows], ddof=1)) if len(rows) > 1 else 0.0 for k in keys},
            "draws": rows}


def load_split(args: argparse.Namespace, cache: EmbeddingCache, dataset: str, split: str,
               intents: Sequence[str] | None = None,
               group: int | None = None) -> tuple[list[Any], np.ndarray, list[list[str]], list[str]]:
    """The support draws (vectors, label lists, texts) and the evaluation set of one dataset (or label group)
    and split."""
    supports = []
    for d in range(args.draws):
        t, y = support_draw(args.data, dataset, d, args.shots, args.multi, args.seed, intents, group)
        supports.append((cache.encode(t), y, t))
    t, y = eval_set(args.data, dataset, split, args.singles, args.pairs, args.seed, intents, group)
    return supports, cache.encode(t), y, t


def markdown(results: dict[str, Any], command: str, model: str = "minilm") -> str:
    lines = [f"Command: `{command}`", "", f"Encoder: `{model}`.", "",
             "Mean over support draws (sd in brackets). micro/macro = F1, subset = exact set match; "
             "1-intent / 2-intent = subset accuracy on the single- and two-intent texts.", ""]
    for split, by_ds in results.items():
        lines += [f"### {split}", "", "| dataset | method | micro-F1 | macro-F1 | subset acc. | 1-intent | 2-intent "
                  "| empty | fit s |", "|---|---|---|---|---|---|---|---|---|"]
        for ds, by_m in by_ds.items():
            for name, r in by_m.items():
                m, sd = r["mean"], r["sd"]
                lines.append(f"| {ds} | {name} | {m['micro_f1']:.3f} ({sd['micro_f1']:.3f}) | {m['macro_f1']:.3f} | "
                             f"{m['subset_accuracy']:.3f} ({sd['subset_accuracy']:.3f}) | "
                             f"{m['single_subset_accuracy']:.3f} | {m['pair_subset_accuracy']:.3f} | "
                             f"{m['empty']:.3f} | {m['fit_s']:.1f} |")
        lines.append("")
        lines += group_summary(by_ds)
    return "\n".join(lines)


def group_summary(by_task: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown rows summarising label groups (tasks named ``dataset:group``) per dataset and method: the mean
    over groups of the draws' means, and the weakest group; no rows for whole datasets."""
    per: dict[tuple[str, str], list[dict[str, float]]] = {}
    for task, by_m in by_task.items():
        if ":" in task:
            for name, r in by_m.items():
                per.setdefault((task.split(":", 1)[0], name), []).append(r["mean"])
    if not per:
        return []
    lines = ["Label groups, summarised: mean over the groups (each a mean over draws), and the lowest group.", "",
             "| dataset | method | groups | micro-F1 | subset acc. | 1-intent | 2-intent | lowest micro-F1 "
             "| lowest subset acc. |", "|---|---|---|---|---|---|---|---|---|"]
    for (ds, name), ms in per.items():
        mean = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
        lines.append(f"| {ds} | {name} | {len(ms)} | {mean['micro_f1']:.3f} | {mean['subset_accuracy']:.3f} | "
                     f"{mean['single_subset_accuracy']:.3f} | {mean['pair_subset_accuracy']:.3f} | "
                     f"{min(m['micro_f1'] for m in ms):.3f} | {min(m['subset_accuracy'] for m in ms):.3f} |")
    return lines + [""]


def fit_timing(args: argparse.Namespace, cache: EmbeddingCache) -> dict[str, Any]:
    """Fit seconds (wall, CPU) of the default with ``solver="joint"`` and ``"sklearn"``, alternating per draw."""
    from fewshot.multilabel import MultiLabelConfig, MultiLabelCore

    out: dict[str, Any] = {}
    for ds in DATASETS:
        times: dict[str, list[tuple[float, float]]] = {"sklearn": [], "joint": []}
        for d in range(args.draws):
            t, y = support_draw(args.data, ds, d, args.shots, args.multi, args.seed)
            x, views = cache.encode(t), cache.encode_views(t, "words")
            for solver in times:
                wall, cpu = time.perf_counter(), time.process_time()
                MultiLabelCore(MultiLabelConfig(solver=solver)).fit(x, y, views)
                times[solver].append((time.perf_counter() - wall, time.process_time() - cpu))
        out[ds] = {s: {"wall_s": [w for w, _ in v], "cpu_s": [c for _, c in v],
                       "mean_cpu_s": float(np.mean([c for _, c in v]))} for s, v in times.items()}
        ratio = out[ds]["sklearn"]["mean_cpu_s"] / out[ds]["joint"]["mean_cpu_s"]
        print(f"{ds}: mean fit CPU s: sklearn {out[ds]['sklearn']['mean_cpu_s']:.2f}, joint "
              f"{out[ds]['joint']['mean_cpu_s']:.2f} (x{ratio:.2f}); wall s sklearn "
              f"{np.round(out[ds]['sklearn']['wall_s'], 1).tolist()}, joint {np.round(out[ds]['joint']['wall_s'], 1).tolist()}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not all(common.has_data(args.data, tuple(args.datasets), split) for split in ("train", "valid", "test")):
        return 0
    common.set_threads(args.threads)
    common.reproducible()
    if args.fit_timing:
        common.write_json(args.out.with_name(args.out.stem + "_fit_timing.json"),
                          {"command": shlex.join(["python", "bench/multilabel.py", *(argv or sys.argv[1:])]),
                           "environment": common.environment(), "results": fit_timing(args, EmbeddingCache(args.cache, args.model))})
        return 0
    if args.groups:
        known = {f"{ds}:{g}" for ds in args.datasets for g in label_groups(args.data, ds)}
        unknown = sorted(set(args.groups) - known)
        if unknown:
            print(f"unknown groups {unknown}; known: {sorted(known)}", file=sys.stderr)
            return 2
    table = methods()
    if args.method:
        wanted = [m.strip() for m in args.method]
        missing = [m for m in wanted if m not in table]
        if missing:
            print(f"unknown methods {missing}; known: {list(table)}", file=sys.stderr)
            return 2
        table = {m: table[m] for m in wanted}
    cache = EmbeddingCache(args.cache, args.model)
    splits = ["valid", "test"] if args.split == "both" else [args.split]
    results: dict[str, Any] = {}
    for split in splits:
        results[split] = {}
        for ds in args.datasets:
            tasks = ({f"{ds}:{g}": (labs, i) for i, (g, labs) in enumerate(label_groups(args.data, ds).items())
                      if not args.groups or f"{ds}:{g}" in args.groups}
                     if args.groups is not None else {ds: (None, None)})
            for task, (intents, group) in tasks.items():
                supports, x_eval, y_eval, t_eval = load_split(args, cache, ds, split, intents, group)
                results[split][task] = {}
                for name, cfg in table.items():
                    r = evaluate(cfg, supports, x_eval, y_eval, t_eval, cache)
                    results[split][task][name] = r
                    print(f"{split} {task} {name}: micro-F1 {r['mean']['micro_f1']:.3f} "
                          f"subset {r['mean']['subset_accuracy']:.3f}", file=sys.stderr, flush=True)
    command = shlex.join(["python", "bench/multilabel.py", *(argv if argv is not None else sys.argv[1:])])
    out = {"command": command.strip(), "settings": {k: str(v) for k, v in vars(args).items()},
           "environment": common.environment(), "methods": table, "results": results}
    common.write_json(args.out, out)
    md = markdown(results, command.strip(), args.model)
    args.out.with_suffix(".md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
