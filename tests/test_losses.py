"""Properties of the meta-training losses (fewshot.meta.losses)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from fewshot.errors import FewShotError
from fewshot.meta.losses import (
    ContrastiveLoss,
    CosineScoreLoss,
    HeldOutLabelRankingLoss,
    MatchingLoss,
    PrototypicalLoss,
    SelfContrastiveLoss,
    contrastive_loss,
)

distances = st.floats(min_value=0.0, max_value=3.0, allow_nan=False)
margins = st.floats(min_value=0.05, max_value=3.0, allow_nan=False)


@given(d=distances, m=margins)
def test_contrastive_formula_exactly(d: float, m: float) -> None:
    dist = torch.tensor([d, d], dtype=torch.float64)
    y = torch.tensor([0.0, 1.0], dtype=torch.float64)
    got = contrastive_loss(dist, y, m)
    assert got[0].item() == pytest.approx(d ** 2)
    assert got[1].item() == pytest.approx(max(0.0, m - d) ** 2)


@given(near=st.floats(0.0, 0.4), far=st.floats(0.6, 2.0))
def test_similar_pair_close_costs_less_than_far(near: float, far: float) -> None:
    """y=0 (similar): a closer pair costs less; y=1 (dissimilar): a closer pair costs more."""
    d = torch.tensor([near, far], dtype=torch.float64)
    sim = contrastive_loss(d, torch.zeros(2, dtype=torch.float64), 1.0)
    dis = contrastive_loss(d, torch.ones(2, dtype=torch.float64), 1.0)
    assert sim[0] <= sim[1]
    assert dis[0] >= dis[1]


@given(d=st.floats(1.0, 3.0), m=st.floats(0.1, 1.0))
def test_dissimilar_beyond_margin_costs_nothing_and_has_no_gradient(d: float, m: float) -> None:
    a = torch.zeros(1, 4, requires_grad=True)
    b = torch.zeros(1, 4)
    b[0, 0] = d
    loss = ContrastiveLoss(margin=m)(a, b, torch.ones(1))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.all(a.grad == 0)


def test_contrastive_module_on_embeddings_and_gradients_flow() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 8)
    lin = torch.nn.Linear(8, 8)
    z = F.normalize(lin(x), dim=-1)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    loss = ContrastiveLoss(margin=1.0)(z[:3].repeat(2, 1), z[3:].repeat(2, 1), y)
    loss.backward()
    assert loss.item() > 0
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    identical = ContrastiveLoss()(z[:1].detach(), z[:1].detach(), torch.zeros(1))
    assert identical.item() == pytest.approx(0.0, abs=1e-10)
    per_pair = ContrastiveLoss(reduction="none")(z[:3].detach(), z[3:].detach(), y[:3])
    assert per_pair.shape == (3,)


def test_contrastive_rejects_bad_arguments() -> None:
    with pytest.raises(FewShotError):
        ContrastiveLoss(margin=0)
    with pytest.raises(FewShotError):
        ContrastiveLoss()(torch.zeros(2, 3), torch.zeros(3, 3), torch.zeros(2))


def _episode(separation: float, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(3, 16) * separation
    sy = torch.arange(3).repeat_interleave(4)
    qy = torch.arange(3).repeat_interleave(2)
    s = centres[sy] + 0.3 * torch.randn(len(sy), 16, generator=g)
    q = centres[qy] + 0.3 * torch.randn(len(qy), 16, generator=g)
    return s, sy, q, qy


@pytest.mark.parametrize("loss_cls", [MatchingLoss, PrototypicalLoss])
def test_episode_losses_prefer_separated_classes(loss_cls: type) -> None:
    loss_fn = loss_cls(temperature=0.1)
    well = loss_fn(*_episode(5.0), n_way=3)
    mixed = loss_fn(*_episode(0.0), n_way=3)
    assert well < mixed
    s, sy, q, qy = _episode(5.0)
    wrong = loss_fn(s, sy, q, (qy + 1) % 3, n_way=3)  # the queries labelled as the wrong class
    assert well < wrong


@pytest.mark.parametrize("loss_cls", [MatchingLoss, PrototypicalLoss])
def test_episode_losses_gradients_flow(loss_cls: type) -> None:
    s, sy, q, qy = _episode(1.0)
    lin = torch.nn.Linear(16, 16)
    loss = loss_cls(temperature=0.1)(lin(s), sy, lin(q), qy, n_way=3)
    loss.backward()
    assert torch.isfinite(loss)
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 10_000), temperature=st.floats(0.01, 1.0))
def test_matching_loss_is_cross_entropy_of_attention(seed: int, temperature: float) -> None:
    s, sy, q, qy = _episode(1.0, seed)
    loss = MatchingLoss(temperature=temperature)(s, sy, q, qy, n_way=3)
    att = (F.normalize(q, dim=-1) @ F.normalize(s, dim=-1).T / temperature).softmax(-1)
    probs = torch.stack([att[:, sy == c].sum(1) for c in range(3)], dim=1)
    # the loss floors probabilities at 1e-12 (a finite log): at a low temperature a query's right label can
    # get less than that, and the two summations then differ below the floor only
    expected = -probs[torch.arange(len(qy)), qy].clamp_min(1e-12).log().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_episode_loss_rejects_bad_labels() -> None:
    s, sy, q, qy = _episode(1.0)
    with pytest.raises(FewShotError):
        PrototypicalLoss()(s, sy, q, qy, n_way=2)
    with pytest.raises(FewShotError):
        MatchingLoss(temperature=0)


def test_held_out_label_ranking_is_a_smooth_auroc() -> None:
    """Low when every hidden text scores below every known query, high in the reverse order; exact formula."""
    s, sy, q, _ = _episode(1.0)
    far = -s[:4]  # opposite to the prototypes: clearly unknown
    near = s[:4] + 0.01  # on top of them: looks known
    loss_fn = HeldOutLabelRankingLoss(temperature=0.1)
    assert loss_fn(s, sy, q, far, n_way=3) < loss_fn(s, sy, q, near, n_way=3)
    known, unknown = loss_fn.scores(s, sy, q, 3), loss_fn.scores(s, sy, far, 3)
    expected = F.softplus((unknown[None, :] - known[:, None]) / 0.1).mean()
    assert loss_fn(s, sy, q, far, n_way=3).item() == pytest.approx(expected.item(), rel=1e-6)
    lin = torch.nn.Linear(16, 16)
    loss = loss_fn(lin(s), sy, lin(q), lin(near), n_way=3)
    loss.backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    with pytest.raises(FewShotError, match="hidden texts"):
        loss_fn(s, sy, q, q[:0], n_way=3)
    with pytest.raises(FewShotError, match="temperature"):
        HeldOutLabelRankingLoss(temperature=0)


def test_self_contrast_prefers_matching_views_and_is_cross_entropy() -> None:
    """SimCSE: low when each row's second view is itself, high when the views are shuffled; exact formula."""
    g = torch.Generator().manual_seed(0)
    a = F.normalize(torch.randn(8, 16, generator=g), dim=-1)
    noisy = F.normalize(a + 0.05 * torch.randn(8, 16, generator=g), dim=-1)
    loss_fn = SelfContrastiveLoss(temperature=0.05)
    assert loss_fn(a, noisy) < loss_fn(a, noisy.roll(1, dims=0))
    expected = F.cross_entropy(a @ noisy.T / 0.05, torch.arange(8))
    assert loss_fn(a, noisy).item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(FewShotError, match="two views"):
        loss_fn(a, noisy[:4])
    with pytest.raises(FewShotError, match="temperature"):
        SelfContrastiveLoss(temperature=0.0)


def test_cosine_score_loss_is_squared_error_of_the_cosine() -> None:
    u = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), dim=-1)
    v = F.normalize(torch.tensor([[1.0, 0.0], [1.0, -1.0]]), dim=-1)
    score = torch.tensor([1.0, 0.5])  # cosines 1 and 0: errors 0 and 0.5
    assert CosineScoreLoss()(u, v, score).item() == pytest.approx((0.0 + 0.25) / 2)
    with pytest.raises(FewShotError, match="one score per pair"):
        CosineScoreLoss()(u, v, score[:1])
