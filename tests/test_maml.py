"""MAML / FOMAML / Reptile (fewshot.meta.maml): gradients against references, behaviour, classifier integration."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from fewshot import FewShotClassifier, FewShotError
from fewshot.meta.adapted import MetaModel, fit_adapted_head
from fewshot.meta.episodes import EpisodeSampler
from fewshot.meta.maml import (
    SHARED_KEYS,
    Learner,
    centred_features,
    evaluate_tasks,
    init_params,
    maml_task_loss,
    meta_gradient,
    reptile_pseudo_gradient,
    sample_batch,
    soft_cross_entropy,
)
from fewshot.meta.model_card import write_model_folder
from fewshot.meta.trainer import inner_loop_for_trained_head, meta_train
from fewshot.meta.training_args import MetaConfig

torch.set_num_threads(1)


def _tiny_problem(seed: int = 0, d: int = 4, n: int = 3, k: int = 2, q: int = 2, tasks: int = 2, steps: int = 2):
    """float64 params with a non-identity transform and a meta-batch of ``tasks`` tiny tasks."""
    g = torch.Generator().manual_seed(seed)
    p = init_params(d, MetaConfig(inner_steps=steps, inner_lr=0.7, init_scale=3.0))
    p = {k_: v.double() for k_, v in p.items()}
    p["transform.weight"] = 0.3 * torch.randn(d, d, generator=g, dtype=torch.float64)
    p["transform.bias"] = 0.1 * torch.randn(d, generator=g, dtype=torch.float64)
    p["log_lr"] = torch.log(torch.tensor([0.7, 0.4][:steps] + [0.5] * max(0, steps - 2), dtype=torch.float64))
    xs = torch.randn(tasks, n * k, d, generator=g, dtype=torch.float64)
    xq = torch.randn(tasks, n * q, d, generator=g, dtype=torch.float64)
    ys = torch.nn.functional.one_hot(torch.arange(n).repeat_interleave(k), n).double().expand(tasks, -1, -1)
    yq = torch.nn.functional.one_hot(torch.arange(n).repeat_interleave(q), n).double().expand(tasks, -1, -1)
    return p, xs, ys.contiguous(), xq, yq.contiguous()


def _reference_grad(p, xs, ys, xq, yq, steps: int, first_order: bool) -> dict[str, torch.Tensor]:
    """MAML written the textbook way: torch.autograd.grad(create_graph=True) in a Python loop, task by task."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    total = 0.0
    for t in range(xs.shape[0]):
        zs, zq, _ = centred_features(leaves, xs[t], xq[t])
        w = torch.nn.functional.normalize(ys[t].T @ zs, dim=-1)
        b = torch.zeros(ys.shape[2], dtype=xs.dtype, requires_grad=True)  # constant start, not part of θ
        scale, lrs = leaves["log_scale"].exp(), leaves["log_lr"].exp()
        for i in range(steps):
            loss = soft_cross_entropy(scale * zs @ w.T + b, ys[t])
            gw, gb = torch.autograd.grad(loss, (w, b), create_graph=not first_order)
            w, b = w - lrs[i] * gw, b - lrs[i] * gb
        total = total + soft_cross_entropy(scale * zq @ w.T + b, yq[t])
    names = list(leaves)
    grads = torch.autograd.grad(total / xs.shape[0], [leaves[k] for k in names], allow_unused=True)
    return {k: torch.zeros_like(p[k]) if g is None else g for k, g in zip(names, grads)}


def _meta_loss(p, xs, ys, xq, yq, steps: int) -> float:
    return float(np.mean([maml_task_loss(p, xs[t], ys[t], xq[t], yq[t], steps=steps)[0].item()
                          for t in range(xs.shape[0])]))


def test_second_order_meta_gradient_equals_double_backward_and_finite_differences() -> None:
    p, xs, ys, xq, yq = _tiny_problem(steps=2)
    got, (loss, _) = meta_gradient(p, xs, ys, xq, yq, steps=2)
    ref = _reference_grad(p, xs, ys, xq, yq, steps=2, first_order=False)
    for k in p:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-8, atol=1e-10, msg=k)
    assert abs(loss.item() - _meta_loss(p, xs, ys, xq, yq, 2)) < 1e-10
    eps = 1e-6  # central differences on a few coordinates of every parameter
    for k in p:
        flat = p[k].reshape(-1)
        for idx in range(min(3, flat.numel())):
            plus = {k_: v.clone() for k_, v in p.items()}
            minus = {k_: v.clone() for k_, v in p.items()}
            plus[k].view(-1)[idx] += eps
            minus[k].view(-1)[idx] -= eps
            fd = (_meta_loss(plus, xs, ys, xq, yq, 2) - _meta_loss(minus, xs, ys, xq, yq, 2)) / (2 * eps)
            assert abs(fd - got[k].reshape(-1)[idx].item()) < 1e-6, (k, idx, fd, got[k].reshape(-1)[idx].item())


def test_first_order_drops_exactly_the_second_order_terms() -> None:
    p, xs, ys, xq, yq = _tiny_problem(steps=2, seed=1)
    so, _ = meta_gradient(p, xs, ys, xq, yq, steps=2)
    fo, _ = meta_gradient(p, xs, ys, xq, yq, steps=2, first_order=True)
    ref_fo = _reference_grad(p, xs, ys, xq, yq, steps=2, first_order=True)
    for k in p:
        torch.testing.assert_close(fo[k], ref_fo[k], rtol=1e-8, atol=1e-10, msg=k)
    diff = sum(float((so[k] - fo[k]).norm()) for k in p)
    assert diff > 1e-3, "with inner steps the Hessian terms are not zero, so FOMAML must differ"
    # without inner steps there is nothing to differentiate through: identical
    so0, _ = meta_gradient(p, xs, ys, xq, yq, steps=0)
    fo0, _ = meta_gradient(p, xs, ys, xq, yq, steps=0, first_order=True)
    for k in p:
        torch.testing.assert_close(so0[k], fo0[k], rtol=0, atol=0)


def test_learner_clone_adapt_matches_finite_differences() -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2).double()
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)

    def meta_loss(first_order: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        task = Learner(net, lr=0.3, first_order=first_order).clone()
        for _ in range(2):
            task.adapt(lambda m: torch.tanh(m(x) - y).pow(2).mean())
        loss = (task(x) - y).pow(3).abs().mean()
        names = [n for n, _ in net.named_parameters()]
        return loss, dict(zip(names, torch.autograd.grad(loss, list(net.parameters()))))

    _, so = meta_loss(False)
    _, fo = meta_loss(True)
    eps = 1e-6
    with torch.no_grad():
        net.weight[0, 1] += eps
    lp = _plain(net, x, y)
    with torch.no_grad():
        net.weight[0, 1] -= 2 * eps
    lm = _plain(net, x, y)
    with torch.no_grad():
        net.weight[0, 1] += eps
    assert abs((lp - lm) / (2 * eps) - so["weight"][0, 1].item()) < 1e-6
    assert float((so["weight"] - fo["weight"]).norm()) > 1e-4


def test_learner_adapt_matches_autograd_reference() -> None:
    """torch.func steps give the adapted weights and outer gradients of the textbook torch.autograd.grad loop:
    second order differentiates through the inner steps, first order is the query gradient at the adapted
    weights (the inner gradients are constants)."""
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    xs, ys = torch.randn(6, 4, dtype=torch.float64), torch.randint(0, 3, (6,))
    xq, yq = torch.randn(8, 4, dtype=torch.float64), torch.randint(0, 3, (8,))
    ce = torch.nn.functional.cross_entropy
    names = [n for n, _ in net.named_parameters()]
    for first_order in (False, True):
        task = Learner(net, lr=0.4, first_order=first_order).clone()
        for _ in range(3):
            task.adapt(lambda m: ce(m(xs), ys))
        got = torch.autograd.grad(ce(task(xq), yq), list(net.parameters()))
        fast = dict(net.named_parameters())
        for _ in range(3):
            g = torch.autograd.grad(ce(torch.func.functional_call(net, fast, (xs,)), ys), list(fast.values()),
                                    create_graph=not first_order)
            fast = {n: w - 0.4 * gi for (n, w), gi in zip(fast.items(), g)}
        for n in names:
            torch.testing.assert_close(task.params[n], fast[n], rtol=1e-12, atol=1e-12, msg=n)
        want = torch.autograd.grad(ce(torch.func.functional_call(net, fast, (xq,)), yq), list(net.parameters()))
        for n, a, b in zip(names, got, want):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=n)
        if first_order:
            at_adapted = {n: w.detach().requires_grad_() for n, w in fast.items()}
            fo = torch.autograd.grad(ce(torch.func.functional_call(net, at_adapted, (xq,)), yq),
                                     list(at_adapted.values()))
            for n, a, b in zip(names, got, fo):
                torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=n)


def test_learner_adapts_only_trainable_weights_and_takes_a_function() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    net[0].requires_grad_(False)
    x = torch.randn(5, 3)
    task = Learner(net, lr=0.5).clone()
    assert sorted(task.params) == ["1.bias", "1.weight"]
    task.adapt(lambda m: m(x).pow(2).mean())
    assert not torch.equal(task.params["1.weight"], net[1].weight)
    with pytest.raises(FewShotError, match="function of the learner.*Tensor"):
        task.adapt(task(x).pow(2).mean())


def test_learner_adapts_a_network_with_batch_norm() -> None:
    """Layers that update buffers in training (BatchNorm's running statistics) adapt and meta-learn as others do."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    x, y = torch.randn(6, 3), torch.randn(6, 2)
    before = net[1].running_mean.clone()
    task = Learner(net, lr=0.1).clone()
    for _ in range(2):
        task.adapt(lambda m: (m(x) - y).pow(2).mean())
    (task(x) - y).pow(2).mean().backward()
    assert net[0].weight.grad is not None and not torch.equal(net[1].running_mean, before)


def _plain(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The Learner meta-loss value with inner SGD written out by hand (for finite differences)."""
    w, b = net.weight.detach().clone().requires_grad_(), net.bias.detach().clone().requires_grad_()
    for _ in range(2):
        gw, gb = torch.autograd.grad(torch.tanh(x @ w.T + b - y).pow(2).mean(), (w, b))
        w, b = (w - 0.3 * gw).detach().requires_grad_(), (b - 0.3 * gb).detach().requires_grad_()
    return float((x @ w.T + b - y).pow(3).abs().mean().detach())


def test_reptile_moves_theta_toward_the_adapted_weights() -> None:
    p, xs, ys, _, _ = _tiny_problem(steps=3, seed=2, tasks=3)
    pseudo, adapted = reptile_pseudo_gradient(p, xs, ys, steps=3)
    eps = 0.25
    for k in SHARED_KEYS:
        target = adapted[k].mean(dim=0)
        before = float((p[k] - target).norm())
        after = float((p[k] - eps * pseudo[k] - target).norm())
        assert before > 1e-6, f"{k}: the inner loop did not move"
        assert after == pytest.approx((1 - eps) * before, rel=1e-9), k
    # the same through meta_train's outer loop: one plain-SGD step of size eps is θ + eps (mean θ̃ - θ)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 6)).astype(np.float32)
    labels = np.repeat([f"c{i}" for i in range(6)], 10)
    cfg = MetaConfig(method="reptile", n_way=3, k_shots=(2,), q_query=2, meta_batch=4, outer_steps=1,
                     outer_lr=eps, scalar_lr=eps, outer_optimizer="sgd", transform_weight_decay=0.0, inner_steps=3,
                     label_names=False, validate_every=0, seed=3)
    model = meta_train(x, labels, cfg)
    sampler = EpisodeSampler(labels, n_way=3, k_shot=2, q_query=2, seed=3)
    batch = sample_batch(sampler, x, 4)
    p0 = init_params(6, cfg)
    _, adapted = reptile_pseudo_gradient(p0, batch.xs, batch.ys, steps=3)
    for k in SHARED_KEYS:
        expected = p0[k] + eps * (adapted[k].mean(dim=0) - p0[k])
        torch.testing.assert_close(model.params[k], expected, rtol=1e-5, atol=1e-6)


def _synthetic_family(n_classes: int, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Classes differ only in 3 of 24 dimensions; the other 21 carry large shared-structure noise."""
    rng = np.random.default_rng(seed)
    means = np.zeros((n_classes, 24))
    means[:, :3] = rng.normal(size=(n_classes, 3))
    x = np.repeat(means, rows, axis=0)
    x[:, :3] += 0.25 * rng.normal(size=(len(x), 3))
    x[:, 3:] += 1.2 * rng.normal(size=(len(x), 21))
    return x.astype(np.float32), np.repeat([f"s{seed}_{i}" for i in range(n_classes)], rows)


def test_maml_clearly_beats_no_meta_learning_on_a_synthetic_task_family() -> None:
    x, labels = _synthetic_family(150, 12, seed=0)
    vx, vlabels = _synthetic_family(60, 12, seed=1)
    cfg = MetaConfig(method="maml", n_way=5, k_shots=(2,), q_query=5, meta_batch=4, outer_steps=100,
                     outer_lr=1e-2, inner_steps=3, inner_lr=0.3, label_names=False, validate_every=0, seed=0)
    model = meta_train(x, labels, cfg)
    test_batch = sample_batch(EpisodeSampler(vlabels, n_way=5, k_shot=2, q_query=5, seed=7), vx, 64)
    baseline = evaluate_tasks(init_params(24, cfg), test_batch, cfg)  # same inner loop, θ not meta-learned
    learned = evaluate_tasks(model.params, test_batch, cfg)
    assert learned > baseline + 0.15, (baseline, learned)
    for method in ("fomaml", "reptile"):  # they learn too (weaker claims: better than the start)
        m = meta_train(x, labels, MetaConfig(**{**cfg.__dict__, "method": method, "outer_steps": 60}))
        assert evaluate_tasks(m.params, test_batch, m.config) > baseline + 0.05, method


# ---- classifier integration ---------------------------------------------------------------------------
@dataclass
class _Spec:
    name: str
    base: str
    trained_dir: str | None


class HashEncoder:
    """A 32-d bag-of-hashed-words encoder: fast, deterministic, no model download."""

    dim = 32

    def __init__(self, trained_dir: str | None) -> None:
        self.spec = _Spec("hash", "hash", trained_dir)
        self.name = "hash"

    def describe(self) -> dict:
        return {"model": self.name, "dim": self.dim}

    def encode(self, texts, progress=None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


SUPPORT = {"refund": ["I want my money back", "where is my refund", "please refund my order"],
           "lost_card": ["I lost my card", "my card was stolen", "block my missing card"],
           "weather": ["will it rain tomorrow", "weather today please", "is it sunny outside"]}


def _tiny_folder(tmp_path: Path, method: str) -> Path:
    cfg = MetaConfig(method=method, inner_steps=3, inner_lr=0.5)
    p = init_params(HashEncoder.dim, cfg)
    p["transform.weight"] = 0.05 * torch.randn(32, 32, generator=torch.Generator().manual_seed(0))
    return write_model_folder(tmp_path / method, MetaModel(p, cfg, {"seconds": 0.0}), base="hash")


@pytest.mark.parametrize("method", ["maml", "fomaml", "reptile"])
def test_classifier_adapt_runs_the_saved_inner_loop(tmp_path: Path, method: str) -> None:
    folder = _tiny_folder(tmp_path, method)
    assert {"maml.json", "maml.safetensors", "fewshot_model.json", "README.md"} <= {f.name for f in folder.iterdir()}
    texts = [t for texts in SUPPORT.values() for t in texts]
    labels = [lab for lab, texts in SUPPORT.items() for _ in texts]
    enc = HashEncoder(str(folder))
    clf = FewShotClassifier(encoder=enc, adapt=method).fit(texts, labels)
    assert list(clf.predict(texts)) == labels
    probs = clf.predict_proba(["refund my money", "rain tomorrow"])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # the same numbers as calling the inner loop directly (label names are one extra example, as for "head")
    names = enc.encode(["lost card", "refund", "weather"])
    classes = {c: i for i, c in enumerate(sorted(SUPPORT))}
    x = np.vstack([enc.encode(texts), names])
    y = np.concatenate([[classes[lab] for lab in labels], np.arange(3)])
    head = fit_adapted_head(x, y, 3, MetaModel.load(folder))
    np.testing.assert_allclose(probs, head.predict_proba(enc.encode(["refund my money", "rain tomorrow"])),
                               rtol=1e-5, atol=1e-6)


def test_classifier_adapt_errors_and_default_unchanged(tmp_path: Path) -> None:
    folder = _tiny_folder(tmp_path, "maml")
    texts = [t for texts in SUPPORT.values() for t in texts]
    labels = [lab for lab, texts in SUPPORT.items() for _ in texts]
    with pytest.raises(FewShotError, match="adapt must be one of"):
        FewShotClassifier(encoder=HashEncoder(str(folder)), adapt="bogus")
    with pytest.raises(FewShotError, match="rule='matching'"):
        FewShotClassifier(encoder=HashEncoder(str(folder)), adapt="maml", rule="matching")
    with pytest.raises(FewShotError, match="meta-trained with 'maml'"):
        FewShotClassifier(encoder=HashEncoder(str(folder)), adapt="reptile").fit(texts, labels)
    with pytest.raises(FewShotError, match="needs a model folder"):
        FewShotClassifier(encoder=HashEncoder(None), adapt="maml").fit(texts, labels)
    wrong = FewShotClassifier(encoder=HashEncoder(None), adapt="maml")
    with pytest.raises(FewShotError, match="needs a model folder"):
        wrong.add_examples("refund", texts[:2])  # refused before anything is added
    assert not wrong.counts() and not wrong.__sklearn_is_fitted__()  # nothing half-added
    with pytest.raises(FewShotError, match="holds no meta-learned"):
        FewShotClassifier(encoder=HashEncoder(str(tmp_path)), adapt="maml").fit(texts, labels)
    default = FewShotClassifier(encoder=HashEncoder(str(folder))).fit(texts, labels)
    assert default.config.adapt == "none" and type(default._fitted_head).__name__ == "LinearHead"


def test_save_load_round_trip_and_fit_time_for_77_labels(tmp_path: Path) -> None:
    cfg = MetaConfig(method="maml", inner_steps=5)
    p = init_params(384, cfg)
    p["transform.weight"] = 0.01 * torch.randn(384, 384, generator=torch.Generator().manual_seed(0))
    old_umask = os.umask(0o022)
    try:
        MetaModel(p, cfg).save(tmp_path)
    finally:
        os.umask(old_umask)
    modes = {f.name: f.stat().st_mode & 0o777 for f in tmp_path.iterdir()}
    assert modes["maml.safetensors"] == modes["maml.json"] == 0o644, modes  # readable as the folder's other files
    loaded = MetaModel.load(tmp_path)
    for k in p:
        torch.testing.assert_close(loaded.params[k], p[k])
    assert loaded.config == cfg
    rng = np.random.default_rng(0)
    x = rng.normal(size=(77 * 6, 384)).astype(np.float32)  # 77 labels x (5 examples + the label name)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.tile(np.arange(77), 6)
    for method in ("maml", "reptile"):
        loaded.config.method = method
        fit_adapted_head(x, y, 77, loaded)  # warm-up
        start = time.perf_counter()
        head = fit_adapted_head(x, y, 77, loaded)
        assert time.perf_counter() - start < 1.0, method
        assert head.predict_proba(x[:4]).shape == (4, 77)


def test_config_validation_names_the_bad_value() -> None:
    with pytest.raises(FewShotError, match="method must be one of"):
        MetaConfig(method="protonet").validate()
    with pytest.raises(FewShotError, match="n_way must be >= 2"):
        MetaConfig(n_way=1).validate()
    with pytest.raises(FewShotError, match="label_vectors"):
        meta_train(np.zeros((4, 3), np.float32), ["a", "a", "b", "b"], MetaConfig(label_names=True))


def test_train_to_folder_writes_a_loadable_model(tmp_path: Path) -> None:
    from fewshot.meta.trainer import train_to_folder

    x, labels = _synthetic_family(12, 8, seed=3)
    model = train_to_folder("fomaml", x, labels, tmp_path / "m", n_way=3, k_shots=(2,), q_query=2,
                            meta_batch=2, outer_steps=2, label_names=False, validate_every=0)
    loaded = MetaModel.load(tmp_path / "m")
    assert loaded.config.method == "fomaml" and loaded.info["n_train_labels"] == 12
    torch.testing.assert_close(loaded.params["transform.weight"], model.params["transform.weight"])
    with pytest.raises(FewShotError, match="unknown meta-training option"):
        train_to_folder("maml", x, labels, tmp_path / "n", n_ways=3)


def test_train_head_maml_step_matches_meta_gradient() -> None:
    """train_head's outer loop drives MAML over a head: backward through its maml step equals meta_gradient."""
    from dataclasses import replace

    from fewshot.encoders.heads import build_head
    from fewshot.meta import trainer as train
    from fewshot.meta.training_args import TrainConfig

    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(60, 8), dim=-1)
    y = np.repeat(np.arange(6), 10)
    cfg = TrainConfig(method="maml", n_way=3, k_shot=2, q_query=2, label_names=False)
    assert {"maml", "fomaml", "reptile"} <= set(train.METHODS)
    for method in ("maml", "fomaml"):
        head = build_head({"type": "residual_linear", "dim": 8})
        with torch.no_grad():
            head.linear.weight.normal_(0, 0.2)
            head.linear.bias.normal_(0, 0.1)
        data = train.TrainData(x, y, [str(i) for i in range(6)], None,
                               EpisodeSampler(y, n_way=3, k_shot=2, q_query=2, seed=1), np.random.default_rng(0))
        train.METHODS[method](head, data, cfg).backward()
        ep = EpisodeSampler(y, n_way=3, k_shot=2, q_query=2, seed=1).sample()
        inner = inner_loop_for_trained_head(replace(cfg, method=method), 8)
        theta = inner.params | {"transform.weight": head.linear.weight.detach(),
                                "transform.bias": head.linear.bias.detach()}
        oh = lambda a: torch.nn.functional.one_hot(torch.from_numpy(a), 3).float()[None]  # noqa: E731
        ref, _ = meta_gradient(theta, x[ep.support][None], oh(ep.support_y), x[ep.query][None], oh(ep.query_y),
                               steps=inner.config.inner_steps, first_order=method == "fomaml")
        torch.testing.assert_close(head.linear.weight.grad, ref["transform.weight"], rtol=1e-4, atol=1e-5)
    head = build_head({"type": "residual_linear", "dim": 8})
    data = train.TrainData(x, y, [str(i) for i in range(6)], None,
                           EpisodeSampler(y, n_way=3, k_shot=2, q_query=2, seed=1), np.random.default_rng(0))
    loss = train.METHODS["reptile"](head, data, cfg)
    assert not loss.requires_grad and float(head.linear.weight.grad.norm()) > 0
