"""Pure loss functions of Gatys et al. style transfer, on NHWC activations.

A Gram matrix is divided by its number of spatial positions, so it does not grow with image
size. Each squared error is then normalised by one of ``NORMS``:

- ``"mean"``: the mean squared error (Gatys et al.; its scale differs by orders of magnitude
  between layers and images, so weights must be retuned per layer and per image);
- ``"unit_grad"``: ``sum(d^2) / sum(|d|)``, whose gradient has an L1 norm of about 1 whatever
  the layer or image (crowsonkb/style-transfer-pytorch), so a weight is a share of the push.
  The denominator is floored at ``UNIT_GRAD_FLOOR`` of the target's L1 size: closer than that
  the error is a plain (scaled) squared error, whose gradient fades to 0 at the target. Without
  the floor the gradient keeps unit length however close, so at the content start (d = 0 up to
  rounding) the content term pushed along the rounding noise: a batch of 3 under ``vmap``,
  whose convolutions round differently, lost 7 % of its first gradient to it;
- ``"target"``: the mean squared error divided by the target's mean square, a relative error.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

NORMS = ("mean", "unit_grad", "target")
UNIT_GRAD_FLOOR = 1e-3
_EPS = 1e-8


@jax.custom_vjp
def _gram_sum(flat: jax.Array) -> jax.Array:
    """``F^T F`` per batch item for (N, P, C) features, in float32.

    Positions come flattened into one axis: XLA:CPU contracts one axis as a matrix product,
    where an einsum over height and width together ran 3-4x slower (1024x768x64: 0.25 s
    against 0.7-1.1 s). Flattening a height-split map whose height does not divide over the
    devices makes XLA gather it (see :mod:`jnst.devices`).
    """
    return jnp.einsum("npc,npd->ncd", flat, flat, preferred_element_type=jnp.float32)


def _gram_sum_fwd(flat: jax.Array) -> tuple[jax.Array, jax.Array]:
    return _gram_sum(flat), flat


def _gram_sum_bwd(flat: jax.Array, g: jax.Array) -> tuple[jax.Array]:
    # d(F^T F) = F (g + g^T): one matmul, where autodiff of the einsum would do two.
    sym = (g + jnp.swapaxes(g, 1, 2)).astype(flat.dtype)
    return (jnp.einsum("npc,ncd->npd", flat, sym),)


_gram_sum.defvjp(_gram_sum_fwd, _gram_sum_bwd)


def gram_sum(features: jax.Array) -> jax.Array:
    """``sum_hw F[n,h,w,c] F[n,h,w,d]`` of (N, H, W, C) features, in float32."""
    n, h, w, c = features.shape
    return _gram_sum(features.reshape(n, h * w, c))


def gram(features: jax.Array) -> jax.Array:
    """Gram matrices ``G[n, c, d] = sum_hw F[n,h,w,c] F[n,h,w,d] / (H W)`` of (N, H, W, C) features.

    Dividing by the number of positions makes style statistics comparable across sizes, so a
    style image need not match the content image's size.
    """
    _, h, w, _ = features.shape
    return gram_sum(features) / (h * w)


def squared_error(x: jax.Array, target: jax.Array, norm: str = "mean") -> jax.Array:
    """The squared error between ``x`` and ``target``, normalised by ``norm`` (see ``NORMS``)."""
    d = x.astype(jnp.float32) - target
    return error_from_sums(jnp.sum(jnp.square(d)), jnp.sum(jnp.abs(d)), target, norm)


def error_from_sums(sum_sq: jax.Array, sum_abs: jax.Array, target: jax.Array, norm: str = "mean") -> jax.Array:
    """:func:`squared_error` from the sums of ``d^2`` and ``|d|`` over every element, ``d`` the
    difference to ``target``; sums can be added up over parts of an image (:mod:`jnst.tiled_objective`)."""
    if norm == "mean":
        return sum_sq / target.size
    if norm == "unit_grad":
        floor = UNIT_GRAD_FLOOR * jnp.sum(jnp.abs(target)) + _EPS
        return sum_sq / jnp.maximum(sum_abs, jax.lax.stop_gradient(floor))
    if norm == "target":
        return sum_sq / target.size / (jnp.mean(jnp.square(target)) + _EPS)
    raise ValueError(f"unknown norm {norm!r}; choose from {', '.join(NORMS)}")


def content_loss(features: jax.Array, target: jax.Array, norm: str = "mean") -> jax.Array:
    """Squared error between activations (``mean((F - P)^2)`` with the default ``norm``)."""
    return squared_error(features, target, norm)


def gram_loss(features: jax.Array, target_gram: jax.Array, norm: str = "mean") -> jax.Array:
    """One layer's style loss: ``mean((gram(F) - A)^2)`` over the C x C entries with the default
    ``norm`` (and batch)."""
    return squared_error(gram(features), target_gram, norm)


def guided_gram_sums(features: jax.Array, masks: jax.Array) -> jax.Array:
    """Each region's masked Gram sum ``sum_hw m_r^2 F F^T`` of (1, H, W, C) ``features`` under
    (R, H, W) ``masks``: (R, C, C), in float32.

    One :func:`gram_sum` a region, not one batched over the regions: XLA:CPU ran the batched
    product and its gradient 2.3x slower (two regions, five style layers of a 384x192 picture:
    231 ms a gradient against 101 ms; one plain Gram 44 ms).
    """
    return jnp.concatenate([gram_sum(m[None, :, :, None] * features) for m in masks])


def region_mass(masks: jax.Array) -> jax.Array:
    """Each region's ``sum_hw m_r^2`` of (R, H, W) ``masks``: what its masked Gram sum is divided by."""
    return jnp.sum(jnp.square(masks), axis=(1, 2))


def guided_error_from_sums(
    sums: jax.Array, mass: jax.Array, positions: int, target_grams: jax.Array, norm: str = "mean"
) -> jax.Array:
    """:func:`guided_gram_loss` from each region's masked Gram sum (R, C, C) and mass (R,) over a
    picture of ``positions``; sums and masses can be added up over parts of an image
    (:mod:`jnst.tiled_objective`)."""
    grams = sums / jnp.maximum(mass, 1e-8)[:, None, None]
    per_region = jax.vmap(lambda g, t: squared_error(g, t, norm))(grams, target_grams)
    return jnp.sum(mass / positions * per_region)


def guided_gram_loss(features: jax.Array, target_grams: jax.Array, masks: jax.Array, norm: str = "mean") -> jax.Array:
    """Style loss over masked regions (guided Gram matrices, Gatys et al. 2017).

    ``features`` (1, H, W, C), ``target_grams`` (R, C, C) one per region, ``masks`` (R, H, W) in
    [0, 1]. Region r's Gram is ``sum_p m_r(p)^2 F_p F_p^T / sum_p m_r(p)^2``, a statistic of that
    region alone, and its loss is weighted by the region's share ``sum_p m_r(p)^2 / (H W)``, so a
    region's mask value sets its style strength.
    """
    _, h, w, _ = features.shape
    return guided_error_from_sums(guided_gram_sums(features, masks), region_mass(masks), h * w, target_grams, norm)


def gaussian_fit(features: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean (C,) and covariance (C, C) of one image's (1, H, W, C) features over positions."""
    flat = features.reshape(-1, features.shape[-1]).astype(jnp.float32)
    mean = jnp.mean(flat, axis=0)
    centred = flat - mean
    return mean, centred.T @ centred / flat.shape[0]


def psd_sqrt(matrix: jax.Array) -> jax.Array:
    """Symmetric square root of a positive semi-definite matrix (negative eigenvalues -> 0)."""
    values, vectors = jnp.linalg.eigh(matrix)
    return (vectors * jnp.sqrt(jnp.maximum(values, 0.0))) @ vectors.T


def wasserstein_loss(
    features: jax.Array, target_mean: jax.Array, target_cov: jax.Array, target_cov_sqrt: jax.Array
) -> jax.Array:
    """Squared 2-Wasserstein distance between Gaussian fits of the features, over channels C:

    ``(|mu - mu_t|^2 + tr(S) + tr(S_t) - 2 tr((S_t^1/2 S S_t^1/2)^1/2)) / C``.

    Unlike the Gram loss it separates the mean from the covariance, which keeps colours and
    textures apart (crowsonkb/style-transfer-pytorch). ``target_cov_sqrt`` is ``psd_sqrt`` of the
    target covariance, computed once.
    """
    mean, cov = gaussian_fit(features)
    inner = target_cov_sqrt @ cov @ target_cov_sqrt
    # eigvalsh's gradient needs distinct eigenvalues; sqrt's needs them away from 0.
    trace_sqrt = jnp.sum(jnp.sqrt(jnp.maximum(jnp.linalg.eigvalsh(inner), 1e-6)))
    distance = jnp.sum(jnp.square(mean - target_mean)) + jnp.trace(cov) + jnp.trace(target_cov) - 2 * trace_sqrt
    return jnp.maximum(distance, 0.0) / features.shape[-1]


def style_loss(
    features: Mapping[str, jax.Array],
    target_grams: Mapping[str, jax.Array],
    layer_weights: Mapping[str, float],
    norm: str = "mean",
) -> jax.Array:
    """Weighted sum over layers of :func:`gram_loss`: ``sum_l w_l mean((G_l - A_l)^2)`` with the
    default ``norm``."""
    return sum(w * gram_loss(features[name], target_grams[name], norm) for name, w in layer_weights.items())


def total_variation_loss(image: jax.Array) -> jax.Array:
    """Smoothness penalty: mean squared difference of vertically and horizontally adjacent pixels,
    ``mean((x[i+1,j] - x[i,j])^2) + mean((x[i,j+1] - x[i,j])^2)``.
    """
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return jnp.mean(jnp.square(dy)) + jnp.mean(jnp.square(dx))


def total_loss(
    content: jax.Array, style: jax.Array, tv: jax.Array, alpha: float, beta: float, gamma: float
) -> jax.Array:
    """``alpha * content + beta * style + gamma * tv``, the objective that the pixels minimise."""
    return alpha * content + beta * style + gamma * tv
