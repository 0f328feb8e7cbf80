"""Targets of a picture too big for memory: :func:`jnst.targets.compute_targets` tile by tile,
forward only, in :func:`jnst.tiles.plan`'s tiles (each with the deepest layer's halo)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jnst.config import StyleConfig
from jnst.targets import Targets, style_blend
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
    graphdef: nnx.GraphDef, params: nnx.State, content: Array, styles: list[Array], config: StyleConfig, tile: int
) -> Targets:
    """:func:`jnst.targets.compute_targets` tile by tile (no masks; Gram style loss): content
    activations assembled from the tiles' interiors, style Grams summed over the tiles."""
    if config.style_loss != "gram":
        raise ValueError("tiles need the Gram style loss (style_loss='gram')")
    content_layers = tuple(name for name, _ in config.content_layers)
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
    grams_only, no_targets = config.replace(content_layers=()), Targets({}, {}, {}, {})
    grams: dict[str, Array] = {}
    for w, style in zip(style_blend(config, len(styles)), styles, strict=True):
        hw = style.shape[1:3]
        for t in plan(hw, tile, config.layers):
            sums = tile_sums(tile_window(style, t), tile_box(t), graphdef, params, no_targets, grams_only)
            for name, _ in config.style_layers:
                grams[name] = grams.get(name, 0.0) + w * sums["gram/" + name] / positions(hw, name)
    return Targets({k: jnp.asarray(v) for k, v in maps.items()}, grams, {}, {})
