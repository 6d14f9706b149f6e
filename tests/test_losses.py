"""Properties of the training losses (fewshot.losses), and their values on fixed tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from fewshot.errors import FewShotError
from fewshot.losses import (
    ContrastiveLoss,
    CosineScoreLoss,
    HeldOutLabelRankingLoss,
    MatchingLoss,
    PrototypicalLoss,
    SelfContrastiveLoss,
    all_positives_and_hardest_negatives,
    contrastive_loss,
    distill_cosine,
    episode_contrastive_loss,
    hardest_negatives,
    preservation_loss,
    random_positive_and_hardest_negative,
    similarity_kl,
    supcon_loss,
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


def _fixed(n: int, d: int, shift: float = 0.0) -> torch.Tensor:
    """A fixed tensor made without a random generator: the same on every machine."""
    return torch.sin(torch.arange(n * d, dtype=torch.float32).reshape(n, d) * 0.7 + 0.3 + shift)


# each loss's value on the tensors of test_losses_compute_what_they_did_before_the_move, computed with the
# losses where they were before fewshot.losses (fewshot.meta.losses, fewshot.adapt.losses, fewshot.meta.distill)
BEFORE_THE_MOVE = {
    "contrastive": 0.20102478563785553,
    "matching": 1.0984916687011719,
    "matching_centred": 1.141921877861023,
    "prototypical": 7.225117206573486,
    "prototypical_uncentred": 7.2415900230407715,
    "held_out_ranking": 0.022653987631201744,
    "self_contrastive": 1.3710427284240723,
    "cosine_score": 0.3288179039955139,
    "supcon": 13.541682243347168,
    "episode_contrastive": 1.7103101015090942,
    "similarity_kl": 30.19148063659668,
    "distill_cosine": 0.9995865225791931,
    "preservation": 2.030895948410034,
}


def test_losses_compute_what_they_did_before_the_move() -> None:
    z = F.normalize(_fixed(12, 6), dim=-1)
    v = F.normalize(_fixed(12, 6, 0.2), dim=-1)
    t = F.normalize(torch.cos(torch.arange(72, dtype=torch.float32).reshape(12, 6) * 1.3), dim=-1)
    labels = torch.arange(3).repeat_interleave(4)
    s, sy, q = _fixed(6, 6), torch.arange(3).repeat_interleave(2), _fixed(6, 6, 1.0)
    proj = torch.nn.Linear(6, 6)
    with torch.no_grad():
        proj.weight.copy_(_fixed(6, 6, 3.0))
        proj.bias.copy_(_fixed(1, 6, 4.0)[0])
    got = {
        "contrastive": ContrastiveLoss(0.8)(z, v, torch.tensor([0, 1] * 6)),
        "matching": MatchingLoss(0.1)(s, sy, q, sy, 3),
        "matching_centred": MatchingLoss(0.1, center=True)(s, sy, q, sy, 3),
        "prototypical": PrototypicalLoss(0.1)(s, sy, q, sy, 3),
        "prototypical_uncentred": PrototypicalLoss(0.1, center=False)(s, sy, q, sy, 3),
        "held_out_ranking": HeldOutLabelRankingLoss(0.1)(s, sy, q[:4], _fixed(3, 6, 2.0), 3),
        "self_contrastive": SelfContrastiveLoss(0.05)(z, v),
        "cosine_score": CosineScoreLoss()(z, v, torch.linspace(0, 1, 12)),
        "supcon": supcon_loss(z, labels, 0.1),
        "episode_contrastive": episode_contrastive_loss(z, labels, 0.9, torch.Generator().manual_seed(3)),
        "similarity_kl": similarity_kl(z, t, 0.05),
        "distill_cosine": distill_cosine(proj, z, t),
        "preservation": preservation_loss(z, t),
    }
    assert {k: x.item() for k, x in got.items()} == pytest.approx(BEFORE_THE_MOVE, rel=1e-5)
    # the pairs both miners chose before they shared hardest_negatives
    _, j, _ = random_positive_and_hardest_negative(z, labels, torch.Generator().manual_seed(3))
    assert j.tolist() == [2, 3, 3, 0, 5, 6, 5, 5, 10, 11, 9, 10, 6, 4, 5, 6, 1, 2, 9, 10, 5, 6, 7, 5]
    _, j, _ = all_positives_and_hardest_negatives(z, labels)
    assert j.tolist() == [1, 2, 3, 2, 3, 3, 5, 6, 7, 6, 7, 7, 9, 10, 11, 10, 11, 11, 6, 4, 5, 6, 1, 2, 9, 10, 5, 6,
                          7, 5]


def test_hardest_negative_is_the_most_similar_other_label_row() -> None:
    z = F.normalize(_fixed(12, 6), dim=-1)
    labels = torch.arange(3).repeat_interleave(4)
    neg = hardest_negatives(z, labels)
    sims = z @ z.T
    for row in range(12):
        others = labels != labels[row]
        assert labels[neg[row]] != labels[row]
        assert sims[row, neg[row]] == sims[row][others].max()


def test_the_fine_tuning_pairs_are_one_positive_and_the_hardest_negative_per_row() -> None:
    z = F.normalize(_fixed(12, 6), dim=-1)
    labels = torch.arange(3).repeat_interleave(4)
    i, j, dissimilar = random_positive_and_hardest_negative(z, labels, torch.Generator().manual_seed(0))
    assert len(i) == 24 and dissimilar.sum() == 12
    same = labels[i] == labels[j]
    assert torch.all(same == (dissimilar == 0)) and torch.all(i != j)
    assert torch.equal(j[dissimilar == 1], hardest_negatives(z, labels))


@pytest.mark.parametrize("loss", [ContrastiveLoss(0.5, "sum"), MatchingLoss(0.2, center=True), PrototypicalLoss(0.2),
                                  HeldOutLabelRankingLoss(0.2), SelfContrastiveLoss(0.2), CosineScoreLoss()])
def test_every_loss_module_reports_its_settings(loss: torch.nn.Module) -> None:
    """As sentence-transformers' losses do: the constructor's arguments, by name."""
    config = loss.get_config_dict()
    assert config == {k: getattr(loss, k) for k in config}
    assert type(loss)(**config).get_config_dict() == config


@pytest.mark.parametrize("make", [lambda t: MatchingLoss(t), lambda t: PrototypicalLoss(t),
                                  lambda t: HeldOutLabelRankingLoss(t), lambda t: SelfContrastiveLoss(t)])
def test_every_temperature_is_checked_alike(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FewShotError, match=r"temperature must be > 0, got -0\.5"):
        make(-0.5)
