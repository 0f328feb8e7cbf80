"""Targets of a picture too big for memory: :func:`jnst.targets.compute_targets` tile by tile,
forward only, in :func:`jnst.tiles.plan`'s tiles (each with the deepest layer's halo), masks
and all."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jnst.config import StyleConfig
from jnst.targets import Targets, layer_masks, style_blend
from jnst.tiled_objective import tile_box, tile_sums, tile_window
from jnst.tiles import plan, positions
from jnst.vgg import features, stride

Array = jax.Array


@functools.partial(jax.jit, static_argnames=("graphdef", "layers", "padding"))
def _window_features(
    window: Array, graphdef: nnx.GraphDef, params: nnx.State, layers: tuple[str, ...], padding: str
) -> dict[str, Array]:
    """A window's activations of ``layers`` (one compilation a window shape)."""
    return features(graphdef, params, window, layers, padding)


def compute_targets(
    graphdef: nnx.GraphDef,
    params: nnx.State,
    content: Array,
    styles: list[Array],
    config: StyleConfig,
    tile: int,
    masks: Array | None = None,
    style_masks: tuple | None = None,
) -> Targets:
    """:func:`jnst.targets.compute_targets` tile by tile (Gram style loss): content activations
    assembled from the tiles' interiors, style Grams summed over the tiles. With ``masks`` (R, H,
    W) the targets keep them per style layer and the Grams per region: each style image's whole
    Gram (one region a style image), or, with ``style_masks`` (one (R, hs, ws) per style image),
    each region's masked sums over every style image's tiles divided by its whole mass."""
    if config.style_loss != "gram":
        raise ValueError("tiles need the Gram style loss (style_loss='gram')")
    content_layers = tuple(name for name, _ in config.content_layers)
    style_layers = tuple(name for name, _ in config.style_layers)
    maps = {}
    if content_layers:
        for t in plan(content.shape[1:3], tile, config.layers):
            acts = _window_features(tile_window(content, t), graphdef, params, content_layers, config.padding)
            for name, f in acts.items():
                s = stride(name)
                if name not in maps:
                    maps[name] = np.zeros((1, content.shape[1] // s, content.shape[2] // s, f.shape[-1]), np.float32)
                y0, y1, x0, x1 = t.y0 // s, t.y1 // s, t.x0 // s, t.x1 // s
                oy, ox = t.wy0 // s, t.wx0 // s
                maps[name][:, y0:y1, x0:x1] = np.asarray(f[:, y0 - oy : y1 - oy, x0 - ox : x1 - ox], np.float32)
    content_maps = {k: jnp.asarray(v) for k, v in maps.items()}
    if not style_layers:
        return Targets(content_maps, {}, {}, {})
    grams_only = config.replace(content_layers=())

    def summed(style: Array, guide: dict[str, Array]) -> dict[str, Array]:  # a style image's (masked) Gram sums
        hw, out, guided = style.shape[1:3], {}, Targets({}, {}, guide, {})
        for t in plan(hw, tile, config.layers):
            sums = tile_sums(tile_window(style, t), tile_box(t), graphdef, params, guided, grams_only)
            for name in style_layers:
                out[name] = out.get(name, 0.0) + sums["gram/" + name]
        return out

    if masks is None:
        grams: dict[str, Array] = {}
        for w, style in zip(style_blend(config, len(styles)), styles, strict=True):
            for name, total in summed(style, {}).items():
                grams[name] = grams.get(name, 0.0) + w * total / positions(style.shape[1:3], name)
        return Targets(content_maps, grams, {}, {})
    if style_masks is None:  # one region a style image, the whole of it
        per_style = [{n: g / positions(s.shape[1:3], n) for n, g in summed(s, {}).items()} for s in styles]
        grams = {n: jnp.concatenate([g[n] for g in per_style]) for n in style_layers}
    else:
        guides = [layer_masks(jnp.asarray(m, jnp.float32), style_layers) for m in style_masks]
        sums = [summed(s, g) for s, g in zip(styles, guides, strict=True)]
        grams = {}
        for name in style_layers:
            mass = sum(jnp.sum(jnp.square(g[name]), axis=(1, 2)) for g in guides)
            grams[name] = sum(x[name] for x in sums) / jnp.maximum(mass, 1e-8)[:, None, None]
    return Targets(content_maps, grams, layer_masks(jnp.asarray(masks, jnp.float32), style_layers), {})
