"""One table comparing few-shot methods on the same episodes, cross-dataset (CLINC150 <-> HWU64), 5 and 10 shots.

    python bench/methods.py --quick      # a few minutes on 2 CPU cores
    python bench/methods.py              # full: more meta-training steps and episodes (~20 min)

Protocol (identical for every method):

- meta-training, where a method has any, uses only the *source* dataset's train split: 80% of its labels
  for training episodes, the other 20% (disjoint labels) for validation episodes that pick the checkpoint;
- evaluation uses only the *target* dataset: an episode draws K support examples for **every** target label
  from its train split (64-way HWU64, 150-way CLINC150) and classifies the **whole** test split; the
  same seeds, hence the same supports, for every method; accuracy is averaged over episodes with a 95%
  t-interval;
- methods that use label names (the default head rule, logistic regression, the MAML family) get each
  label's name as one extra support example, as ``FewShotClassifier`` does; ``matching`` uses the support
  examples only, as the library's ``rule="matching"`` does;
- embeddings are the frozen MiniLM-L6 vectors cached as ``.npy`` (``--emb-dir``; row order = CSV order);
  fit seconds exclude encoding.

Writes ``bench/results/methods.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fewshot.maml import (  # noqa: E402
    MetaConfig,
    MetaModel,
    fit_adapted_head,
    init_params,
    meta_train,
    write_model_folder,
)
from fewshot.matching import attention_probs, fit_prototype_head  # noqa: E402

DATASETS = ("clinc150", "hwu64")
SHOTS = (5, 10)
PredictFn = Callable[[np.ndarray], np.ndarray]
FitFn = Callable[[np.ndarray, np.ndarray, int, np.ndarray], PredictFn]


@dataclass
class Data:
    train_x: np.ndarray
    train_y: np.ndarray  # label strings
    test_x: np.ndarray
    test_y: np.ndarray
    classes: np.ndarray
    names: dict[str, np.ndarray]  # label -> encoded label name


def label_text(label: str) -> str:
    return " ".join(label.replace("_", " ").replace("-", " ").split())


def load(dataset: str, data_dir: Path, emb_dir: Path, encode: Callable[[list[str]], np.ndarray]) -> Data:
    frames = {s: pd.read_csv(data_dir / dataset / f"{s}.csv", dtype=str, keep_default_na=False)
              for s in ("train", "test")}
    arrays = {}
    for s in ("train", "test"):
        path = emb_dir / f"{dataset}_{s}.npy"
        if not path.is_file():  # first run: encode once with the frozen encoder and keep the vectors
            emb_dir.mkdir(parents=True, exist_ok=True)
            np.save(path, encode(frames[s]["text"].tolist()).astype(np.float32))
        arrays[s] = np.load(path)
    for s in frames:
        if len(frames[s]) != len(arrays[s]):
            raise SystemExit(f"{emb_dir}/{dataset}_{s}.npy has {len(arrays[s])} rows, the CSV {len(frames[s])}")
    classes = np.unique(frames["train"]["label"].to_numpy())
    vectors = encode([label_text(c) for c in classes])
    return Data(arrays["train"], frames["train"]["label"].to_numpy(), arrays["test"],
                frames["test"]["label"].to_numpy(), classes, dict(zip(classes, vectors)))


def ci95(values: list[float]) -> float:
    from scipy import stats

    if len(values) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values)))


# ---- methods: fit(support_x, support_y, n_classes, names_x) -> predict_proba ---------------------------
def _with_names(x: np.ndarray, y: np.ndarray, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.vstack([x, names]), np.concatenate([y, np.arange(len(names))])


def fit_matching(x: np.ndarray, y: np.ndarray, n: int, names: np.ndarray, k: int = 10,
                 temperature: float = 0.05) -> PredictFn:
    """The library's ``rule="matching"`` (Vinyals et al. 2016 attention over the k nearest support rows)."""
    def predict(q: np.ndarray) -> np.ndarray:
        sims = q @ x.T
        top = np.argsort(-sims, axis=1)[:, :k]
        probs, _ = attention_probs(np.take_along_axis(sims, top, axis=1), y[top], n, temperature)
        return probs
    return predict


def fit_logreg(x: np.ndarray, y: np.ndarray, n: int, names: np.ndarray) -> PredictFn:
    """scikit-learn multinomial logistic regression, C=10 (fixed, not tuned on these test sets)."""
    from sklearn.linear_model import LogisticRegression

    xs, ys = _with_names(x, y, names)
    lr = LogisticRegression(C=10.0, max_iter=1000).fit(xs, ys)

    def predict(q: np.ndarray) -> np.ndarray:
        out = np.zeros((len(q), n))
        out[:, lr.classes_] = lr.predict_proba(q)
        return out
    return predict


def fit_head(x: np.ndarray, y: np.ndarray, n: int, names: np.ndarray) -> PredictFn:
    """The library default (``rule="head"``): prototype-initialised head fitted by L-BFGS, label names."""
    xs, ys = _with_names(x, y, names)
    return fit_prototype_head(xs, ys, n, temperature=0.1, weight_decay=1e-4, steps=200, center=True).predict_proba


def adapted(model: MetaModel) -> FitFn:
    def fit(x: np.ndarray, y: np.ndarray, n: int, names: np.ndarray) -> PredictFn:
        xs, ys = _with_names(x, y, names)
        return fit_adapted_head(xs, ys, n, model).predict_proba
    return fit


# ---- meta-training ---------------------------------------------------------------------------------
def split_labels(data: Data, seed: int, val_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Boolean row masks (train rows, validation rows) with disjoint labels."""
    rng = np.random.default_rng(seed)
    val_labels = set(rng.choice(data.classes, size=max(2, int(round(val_fraction * len(data.classes)))),
                                replace=False))
    val = np.array([lab in val_labels for lab in data.train_y])
    return ~val, val


def train_meta(method: str, data: Data, args: argparse.Namespace) -> MetaModel:
    tr, va = split_labels(data, args.seed)
    n_way = min(args.n_way, len(np.unique(data.train_y[tr])))  # HWU64: 51 training labels
    cfg = MetaConfig(method=method, n_way=n_way, k_shots=SHOTS, q_query=args.q_query,
                     meta_batch=args.meta_batch, outer_steps=args.outer_steps, inner_steps=args.inner_steps,
                     inner_lr=args.reptile_inner_lr if method == "reptile" else args.inner_lr,
                     outer_lr=args.outer_lr, transform_weight_decay=args.transform_weight_decay,
                     validate_every=args.validate_every, val_episodes=args.val_episodes,
                     seed=args.seed)
    return meta_train(data.train_x[tr], data.train_y[tr], cfg, label_vectors=data.names,
                      val_x=data.train_x[va], val_labels=data.train_y[va])


def train_metric_head(kind: str, data: Data, args: argparse.Namespace) -> tuple[FitFn, float, dict[str, Any]]:
    """Minimal metric-based meta-training of a residual linear head on cached embeddings.

    ``kind="contrastive"``: Siamese pairs with the contrastive loss of Hadsell et al. 2006
    (:class:`fewshot.losses.ContrastiveLoss`, pairs from :func:`fewshot.episodes.sample_pairs`, half hard
    negatives); ``kind="matching"``: Matching-Network episodes (Vinyals et al. 2016,
    :class:`fewshot.losses.MatchingLoss`). The head is :class:`fewshot.heads.ResidualLinearHead` (identity at
    the start), Adam, L2 towards the identity; the checkpoint with the best prototype accuracy on the
    held-out source labels is kept (the same validation split and episodes as the MAML family). At fit time
    the head transforms support, names and queries, then the library's default head rule runs, which is
    what ``FewShotClassifier(model=trained_folder)`` does.
    """
    from fewshot.episodes import EpisodeSampler, sample_pairs
    from fewshot.heads import ResidualLinearHead
    from fewshot.losses import ContrastiveLoss, MatchingLoss
    from fewshot.maml import centred_features, prototype_head, sample_batch

    tr, va = split_labels(data, args.seed)
    x, y = torch.from_numpy(data.train_x[tr]), data.train_y[tr]
    torch.manual_seed(args.seed)
    head = ResidualLinearHead(x.shape[1])
    opt = torch.optim.Adam(head.parameters(), lr=args.outer_lr)
    n_val = min(args.n_way, len(np.unique(data.train_y[va])))
    val = sample_batch(EpisodeSampler(data.train_y[va], n_way=n_val, k_shot=5, q_query=args.q_query, seed=10_000),
                       data.train_x[va], args.val_episodes, data.names)
    identity = {"transform.weight": torch.zeros(x.shape[1], x.shape[1]), "transform.bias": torch.zeros(x.shape[1])}

    def val_acc() -> float:
        accs = []
        with torch.no_grad():
            for t in range(val.xs.shape[0]):
                xs = torch.nn.functional.normalize(head(val.xs[t]), dim=-1)
                xq = torch.nn.functional.normalize(head(val.xq[t]), dim=-1)
                zs, zq, _ = centred_features(identity, xs, xq)
                w = prototype_head(zs, val.ys[t])["weight"]
                accs.append(float(((zq @ w.T).argmax(-1) == val.yq[t].argmax(-1)).float().mean()))
        return float(np.mean(accs))

    if kind == "contrastive":
        loss_fn = ContrastiveLoss(margin=1.0)
        pairs = sample_pairs(y, args.outer_steps * 256, seed=args.seed, embeddings=data.train_x[tr])
    else:
        loss_fn = MatchingLoss(temperature=0.05)
        n_way = min(args.n_way, len(np.unique(y)))
        sampler = EpisodeSampler(y, n_way=n_way, k_shot=5, q_query=args.q_query, seed=args.seed)
    best, best_state, history = val_acc(), {k: v.clone() for k, v in head.state_dict().items()}, []
    start = time.perf_counter()
    for step in range(1, args.outer_steps + 1):
        if kind == "contrastive":
            sl = slice((step - 1) * 256, step * 256)
            a = torch.nn.functional.normalize(head(x[pairs[0][sl]]), dim=-1)
            b = torch.nn.functional.normalize(head(x[pairs[1][sl]]), dim=-1)
            loss = loss_fn(a, b, torch.from_numpy(pairs[2][sl]))
        else:
            ep = sampler.sample()
            loss = loss_fn(head(x[ep.support]), torch.from_numpy(ep.support_y), head(x[ep.query]),
                           torch.from_numpy(ep.query_y), n_way)
        loss = loss + args.transform_weight_decay * sum(p.pow(2).sum() for p in head.parameters())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % args.validate_every == 0 or step == args.outer_steps:
            acc = val_acc()
            history.append(acc)
            if acc > best:
                best, best_state = acc, {k: v.clone() for k, v in head.state_dict().items()}
    seconds = time.perf_counter() - start
    head.load_state_dict(best_state)
    head.eval()

    def apply(v: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.nn.functional.normalize(head(torch.from_numpy(np.ascontiguousarray(v))), dim=-1).numpy()

    def fit(xs: np.ndarray, ys: np.ndarray, n: int, names: np.ndarray) -> PredictFn:
        inner = fit_head(apply(xs), ys, n, apply(names))
        return lambda q: inner(apply(q))

    return fit, seconds, {"best_val_acc": best, "val_history": history,
                          "transform_norm": float(head.linear.weight.norm())}


# ---- evaluation ------------------------------------------------------------------------------------
def episodes(data: Data, shots: int, n: int, seed: int) -> list[np.ndarray]:
    """``n`` supports of ``shots`` train rows per label (all labels), seeded: the same for every method."""
    out = []
    by_label = {c: np.flatnonzero(data.train_y == c) for c in data.classes}
    for e in range(n):
        rng = np.random.default_rng([seed, shots, e])
        out.append(np.concatenate([rng.choice(by_label[c], size=shots, replace=False) for c in data.classes]))
    return out


def evaluate(fit: FitFn, data: Data, supports: list[np.ndarray], shots: int) -> dict[str, Any]:
    index = {c: i for i, c in enumerate(data.classes)}
    y_all = np.array([index[c] for c in data.train_y])
    yq = np.array([index[c] for c in data.test_y])
    names = np.stack([data.names[c] for c in data.classes])
    accs, fit_s = [], []
    for rows in supports:
        start = time.perf_counter()
        predict = fit(data.train_x[rows], y_all[rows], len(data.classes), names)
        fit_s.append(time.perf_counter() - start)
        accs.append(float((predict(data.test_x).argmax(axis=1) == yq).mean()))
    return {"acc": float(np.mean(accs)), "ci95": ci95(accs), "episodes": len(accs), "accs": accs,
            "fit_s": float(np.median(fit_s))}


def fit_time_77x5(fit: FitFn, data: Data, repeats: int = 3) -> float:
    """Median seconds to fit 77 labels x 5 examples (+ names) from cached embeddings (no encoding)."""
    rng = np.random.default_rng(0)
    labels = rng.choice(data.classes, size=min(77, len(data.classes)), replace=False)
    rows = np.concatenate([rng.choice(np.flatnonzero(data.train_y == c), 5, replace=False) for c in labels])
    y = np.repeat(np.arange(len(labels)), 5)
    names = np.stack([data.names[c] for c in labels])
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        fit(data.train_x[rows], y, len(labels), names)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def markdown(rows: list[dict[str, Any]]) -> str:
    cols = [(s, t, k) for s, t in (("clinc150", "hwu64"), ("hwu64", "clinc150")) for k in SHOTS]
    head = ["method"] + [f"{s[:5].upper()}→{t[:5].upper()} {k}-shot" for s, t, k in cols] + \
        ["meta-train s (C / H)", "fit s 77×5"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for m in methods:
        cells = [m]
        mine = [r for r in rows if r["method"] == m]
        for s, t, k in cols:
            r = next((r for r in mine if (r["source"], r["target"], r["shots"]) == (s, t, k)), None)
            if r is None or r.get("acc") is None:
                cells.append("not available")
            else:
                cells.append(f"{100 * r['acc']:.1f} ± {100 * r['ci95']:.1f}")
        secs = [next((r.get("meta_train_s") for r in mine if r["source"] == s), None) for s in DATASETS]
        cells.append(" / ".join("–" if v is None else f"{v:.0f}" for v in secs))
        f77 = next((r.get("fit_77x5_s") for r in mine if r.get("fit_77x5_s") is not None), None)
        cells.append("–" if f77 is None else f"{f77:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_markdown(rows: list[dict[str, Any]], reference: str = "frozen + default head rule") -> str:
    """Per-episode paired differences to ``reference`` (same supports), in accuracy points with a 95% t-interval."""
    cols = [(s, t, k) for s, t in (("clinc150", "hwu64"), ("hwu64", "clinc150")) for k in SHOTS]
    head = ["method − default head (points)"] + [f"{s[:5].upper()}→{t[:5].upper()} {k}-shot" for s, t, k in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ref = {(r["source"], r["target"], r["shots"]): r for r in rows if r["method"] == reference}
    for m in dict.fromkeys(r["method"] for r in rows):
        if m == reference:
            continue
        cells = [m]
        for c in cols:
            r = next((r for r in rows if r["method"] == m and (r["source"], r["target"], r["shots"]) == c), None)
            if r is None or r.get("accs") is None or c not in ref:
                cells.append("not available")
                continue
            d = 100 * (np.array(r["accs"]) - np.array(ref[c]["accs"]))
            cells.append(f"{d.mean():+.2f} ± {ci95(list(d)):.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer meta-training steps and episodes")
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--emb-dir", type=Path, default=Path.home() / ".cache" / "fewshot" / "bench-embeddings",
                   help="cached frozen embeddings (computed on the first run)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "methods.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, help="evaluation episodes per cell (quick 5, full 20)")
    p.add_argument("--outer-steps", type=int, help="meta-training outer steps (quick 40, full 200)")
    p.add_argument("--n-way", type=int, default=64)
    p.add_argument("--q-query", type=int, default=5)
    p.add_argument("--meta-batch", type=int, default=4)
    p.add_argument("--inner-steps", type=int, default=5)
    p.add_argument("--inner-lr", type=float, default=0.5)
    p.add_argument("--reptile-inner-lr", type=float, default=0.1)
    p.add_argument("--outer-lr", type=float, default=1e-3)
    p.add_argument("--transform-weight-decay", type=float, default=3e-2)
    p.add_argument("--validate-every", type=int, default=20)
    p.add_argument("--val-episodes", type=int, default=8)
    p.add_argument("--save-models", type=Path, help="write each meta-trained MAML-family model folder here")
    p.add_argument("--methods", default="all", help="comma-separated subset of method names, or 'all'")
    p.add_argument("--render", type=Path, help="only print the tables of an existing results json")
    args = p.parse_args(argv)
    if args.render:
        saved = json.loads(args.render.read_text())
        print(markdown(saved["rows"]) + "\n\n" + paired_markdown(saved["rows"]))
        return 0
    args.episodes = args.episodes or (5 if args.quick else 20)
    args.outer_steps = args.outer_steps if args.outer_steps is not None else (40 if args.quick else 200)
    torch.set_num_threads(1)
    wanted = None if args.methods == "all" else set(args.methods.split(","))

    from fewshot.encoder import Encoder

    encoder = Encoder("minilm", extra_layers=())
    data = {d: load(d, args.data_dir, args.emb_dir, encoder.encode) for d in DATASETS}
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    baseline_model = MetaModel(init_params(384, MetaConfig(inner_steps=args.inner_steps, inner_lr=args.inner_lr)),
                               MetaConfig(inner_steps=args.inner_steps, inner_lr=args.inner_lr))
    frozen: dict[str, FitFn] = {
        "frozen + matching": fit_matching,
        "frozen + logistic regression": fit_logreg,
        "frozen + default head rule": fit_head,
        "Proto-MAML inner loop (θ not meta-learned)": adapted(baseline_model),
    }
    plan: list[tuple[str, str | None]] = [(m, None) for m in frozen] + \
        [(m, "metric") for m in ("contrastive-Siamese", "Matching")] + \
        [(m.upper() if m != "reptile" else "Reptile", m) for m in ("maml", "fomaml", "reptile")]
    plan = [(m, kind) for m, kind in plan if wanted is None or m in wanted]
    supports = {(d, k): episodes(data[d], k, args.episodes, args.seed) for d in DATASETS for k in SHOTS}
    for method, kind in plan:
        for source, target in (("clinc150", "hwu64"), ("hwu64", "clinc150")):
            meta_s, info = None, {}
            if kind is None:
                fit = frozen[method]
            elif kind == "metric":
                fit, meta_s, info = train_metric_head("contrastive" if method.startswith("contrastive") else
                                                      "matching", data[source], args)
            else:
                model = train_meta(kind, data[source], args)
                if args.save_models:
                    write_model_folder(args.save_models / f"{kind}-{source}", model,
                                       description=f"meta-trained on {source} train (bench/methods.py)")
                meta_s = model.info["seconds"]
                info = {"best_val_acc": model.info["best_val_acc"], "scale": float(model.params["log_scale"].exp()),
                        "inner_lr": model.params["log_lr"].exp().tolist(),
                        "transform_norm": float(model.params["transform.weight"].norm()),
                        "val_history": [h["val_acc"] for h in model.info["history"] if "val_acc" in h]}
                fit = adapted(model)
            f77 = fit_time_77x5(fit, data["clinc150"])
            for k in SHOTS:
                res = evaluate(fit, data[target], supports[(target, k)], k)
                rows.append({"method": method, "source": source, "target": target, "shots": k, **res,
                             "meta_train_s": meta_s, "fit_77x5_s": f77, **info})
                print(f"{method:45s} {source}->{target} {k:2d}-shot acc {res['acc']:.4f} ± {res['ci95']:.4f} "
                      f"fit {res['fit_s']:.3f}s meta {meta_s if meta_s is None else round(meta_s, 1)}",
                      file=sys.stderr, flush=True)
    table = markdown(rows) + "\n\n" + paired_markdown(rows)
    out = {"command": "python bench/methods.py" + (" --quick" if args.quick else ""),
           "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "seconds": time.perf_counter() - t0, "torch_threads": torch.get_num_threads(),
           "platform": platform.platform(), "rows": rows, "table": table,
           "meta_config_defaults": asdict(MetaConfig())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
