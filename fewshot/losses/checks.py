"""Argument checks the losses share: a positive temperature and the tensors of an episode."""

from __future__ import annotations

from torch import Tensor

from ..errors import FewShotError


def check_temperature(temperature: float) -> None:
    """:class:`FewShotError` naming ``temperature`` unless it is > 0 (it divides the similarities)."""
    if temperature <= 0:
        raise FewShotError(f"temperature must be > 0, got {temperature!r}")


def check_episode(support: Tensor, support_y: Tensor, query: Tensor, query_y: Tensor, n_way: int) -> None:
    """:class:`FewShotError` unless support and query are ``(n, d)`` with one episode-local label
    (``0..n_way-1``, ``n_way >= 2``) per row."""
    if support.ndim != 2 or query.ndim != 2 or support.shape[1] != query.shape[1]:
        raise FewShotError(f"support and query must be (n, d) with the same d, got {tuple(support.shape)} "
                           f"and {tuple(query.shape)}")
    if support.shape[0] != support_y.shape[0] or query.shape[0] != query_y.shape[0]:
        raise FewShotError("every support and query row needs one label")
    if n_way < 2 or int(support_y.max()) >= n_way or int(query_y.max()) >= n_way:
        raise FewShotError(f"labels must be episode-local ids 0..n_way-1 with n_way >= 2, got n_way={n_way}")
