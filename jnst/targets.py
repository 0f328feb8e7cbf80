"""What the pixels are pulled towards: content activations and style statistics, computed once
per pass (jitted) before the optimisation loop runs."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jnst import losses
from jnst.config import StyleConfig
from jnst.vgg import LAYERS, Model, features

Array = jax.Array


class Targets(NamedTuple):
    """What the pixels are pulled towards.

    ``content``: content activations (1, h, w, C) per content layer. ``grams``: style Gram
    matrices (R, C, C) per style layer, R = 1 for one (or a blend of) style images, else one per
    masked region. ``masks``: per style layer, the regions' masks (R, h, w) at that layer's
    resolution; empty without masks. ``gaussians``: for the Wasserstein style loss, the style
    features' mean, covariance and covariance square root per style layer. ``temporal``: a video
    frame's earlier outputs warped onto it (:class:`jnst.temporal.Temporal`); ``()`` for a still.
    """

    content: dict[str, Array]
    grams: dict[str, Array]
    masks: dict[str, Array]
    gaussians: dict[str, tuple[Array, Array, Array]]
    temporal: tuple = ()


_STATIC = ("graphdef", "layers", "padding")


@functools.partial(jax.jit, static_argnames=_STATIC)
def _activations(graphdef: nnx.GraphDef, params: nnx.State, image: Array, layers: tuple, padding: str) -> dict:
    return features(graphdef, params, image, layers, padding)


@functools.partial(jax.jit, static_argnames=_STATIC)
def _grams(graphdef: nnx.GraphDef, params: nnx.State, image: Array, layers: tuple, padding: str) -> dict:
    return {name: losses.gram(f) for name, f in features(graphdef, params, image, layers, padding).items()}


@functools.partial(jax.jit, static_argnames=_STATIC)
def _gaussians(graphdef: nnx.GraphDef, params: nnx.State, image: Array, layers: tuple, padding: str) -> dict:
    return {name: losses.gaussian_fit(f) for name, f in features(graphdef, params, image, layers, padding).items()}


def _blend_gaussians(fits: list[tuple[Array, Array]], weights: np.ndarray) -> tuple[Array, Array, Array]:
    """Mean, covariance and its square root of the mixture of ``fits`` with ``weights``."""
    mean = sum(w * m for w, (m, _) in zip(weights, fits, strict=True))
    second = sum(w * (c + jnp.outer(m, m)) for w, (m, c) in zip(weights, fits, strict=True))
    cov = second - jnp.outer(mean, mean)
    return mean, cov, losses.psd_sqrt(cov)


def layer_masks(masks: Array, layers: tuple[str, ...]) -> dict[str, Array]:
    """Masks (R, H, W) downsampled to each layer's resolution, 2x2-averaged wherever VGG pools."""
    out, m = {}, masks
    for name in LAYERS[: max(LAYERS.index(n) for n in layers) + 1]:
        if name.endswith("_pool"):
            r, h, w = m.shape
            m = m[:, : h // 2 * 2, : w // 2 * 2].reshape(r, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
        if name in layers:
            out[name] = m
    return out


@functools.partial(jax.jit, static_argnames=_STATIC)
def _guided_sums(
    graphdef: nnx.GraphDef, params: nnx.State, image: Array, masks: Array, layers: tuple, padding: str
) -> dict:
    """Per layer, the masked Gram sums ``sum_p m_r(p)^2 F_p F_p^T`` (R, C, C) of a style image
    under its region masks (R, h, w) and their masses ``sum_p m_r(p)^2`` (R,)."""
    acts = features(graphdef, params, image, layers, padding)
    out = {}
    for name, m in layer_masks(masks, layers).items():
        out[name] = (losses.guided_gram_sums(acts[name], m), losses.region_mass(m))
    return out


def guided_grams(net: tuple, styles: list[Array], style_masks: tuple, layers: tuple, padding: str) -> dict:
    """Each region's target Gram per layer: the mask-weighted Gram of every style image together
    (:mod:`jnst.masks`), ``style_masks`` one (R, hs, ws) per style image."""
    pairs = zip(styles, style_masks, strict=True)
    sums = [_guided_sums(*net, s, jnp.asarray(m, jnp.float32), layers, padding) for s, m in pairs]
    out = {}
    for name in layers:
        total, mass = sum(x[name][0] for x in sums), sum(x[name][1] for x in sums)
        out[name] = total / jnp.maximum(mass, 1e-8)[:, None, None]
    return out


def style_blend(config: StyleConfig, count: int) -> np.ndarray:
    """Each of ``count`` style images' share of the blend (``config.style_blend``, normalised;
    equal shares when it is empty)."""
    blend = np.asarray(config.style_blend or [1.0] * count, np.float32)
    if len(blend) != count:
        raise ValueError(f"style_blend has {len(blend)} weights for {count} style images")
    return blend / blend.sum()


def compute_targets(
    model: Model,
    content: Array,
    styles: list[Array],
    config: StyleConfig,
    masks: Array | None = None,
    style_masks: tuple | None = None,
) -> Targets:
    """Content activations of ``content`` (1, H, W, 3); style Grams of ``styles``, blended by
    ``config.style_blend`` or, with ``masks`` (one per style, content-sized), kept per region;
    with ``style_masks`` too (one (R, hs, ws) per style), region r's Gram is that of the style
    images' region r (:func:`guided_grams`)."""
    net = (model.graphdef, model.params)
    content_layers = tuple(name for name, _ in config.content_layers)
    style_layers = tuple(name for name, _ in config.style_layers)
    c = _activations(*net, content, content_layers, config.padding) if content_layers else {}
    if not style_layers:
        return Targets(c, {}, {}, {})
    if masks is not None:
        if config.style_loss != "gram":
            raise ValueError("masks need the Gram style loss (style_loss='gram')")
        if style_masks is not None:
            grams = guided_grams(net, styles, style_masks, style_layers, config.padding)
        else:
            per_style = [_grams(*net, s, style_layers, config.padding) for s in styles]
            grams = {n: jnp.concatenate([g[n] for g in per_style]) for n in style_layers}
        return Targets(c, grams, layer_masks(jnp.asarray(masks, jnp.float32), style_layers), {})
    blend = style_blend(config, len(styles))
    if config.style_loss == "wasserstein":
        fits = [_gaussians(*net, s, style_layers, config.padding) for s in styles]
        return Targets(c, {}, {}, {n: _blend_gaussians([f[n] for f in fits], blend) for n in style_layers})
    per_style = [_grams(*net, s, style_layers, config.padding) for s in styles]
    grams = {n: sum(w * g[n] for w, g in zip(blend, per_style, strict=True)) for n in style_layers}
    return Targets(c, grams, {}, {})
