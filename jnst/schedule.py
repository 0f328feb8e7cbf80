"""Coarse to fine: the passes (:func:`pass_plan`: sizes, steps, compiled chunk lengths), how the
steps are shared among them, and how a pass hands its state on.

Each pass runs at a larger size (``StyleConfig.pyramid``). The next pass starts from this pass's
averaged iterate, resized, with Adam's moment estimates resized along with it so that the
optimiser does not restart cold (crowsonkb/style-transfer-pytorch); L-BFGS's curvature pairs
belong to the old size, so it starts afresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jnst import images
from jnst.config import StyleConfig
from jnst.devices import to_host
from jnst.loop import LoopState, default_chunk_size
from jnst.vgg import min_side

Array = jax.Array


def resize(image: Array | np.ndarray, hw: tuple[int, int]) -> Array:
    """Resize (N, H, W, C) images to ``hw`` (antialiased linear, as ``jax.image.resize``), kept
    in [0, 1]."""
    return _resize(image, hw, clip=True)


def _resize(x: Array | np.ndarray, hw: tuple[int, int], clip: bool = False) -> Array:
    """``jax.image.resize(x, ..., "linear", antialias=True)`` computed on the host: the same
    weights, but no compilation for each pass's shapes (about 0.4 s each on a CPU, 2 s of a
    256 px run). An axis already at its size is left as it is."""
    if tuple(x.shape[1:3]) == tuple(hw) and not clip:
        return jnp.asarray(x)
    out = np.asarray(to_host(x), np.float32)
    # tensordot is a BLAS matmul; einsum with one weight matrix ran numpy's own loops (16 s of a
    # 256 px run).
    if out.shape[1] != hw[0]:
        out = np.moveaxis(np.tensordot(_linear_weights(out.shape[1], hw[0]), out, axes=(1, 1)), 0, 1)
    if out.shape[2] != hw[1]:
        out = np.moveaxis(np.tensordot(out, _linear_weights(out.shape[2], hw[1]), axes=(2, 1)), -1, 2)
    return jnp.asarray(np.clip(out, 0.0, 1.0) if clip else out)


def _linear_weights(n: int, m: int) -> np.ndarray:
    """(m, n) weights taking n samples to m by a triangle kernel widened by n/m when shrinking
    (antialiasing), each row normalised (``jax.image.scale_and_translate``'s weights)."""
    inv_scale = n / m
    centres = (np.arange(m) + 0.5) * inv_scale - 0.5
    distance = np.abs(centres[:, None] - np.arange(n)[None, :]) / max(inv_scale, 1.0)
    weights = np.maximum(0.0, 1.0 - distance)
    total = weights.sum(axis=1, keepdims=True)
    weights = np.where(np.abs(total) > 1000 * np.finfo(np.float32).eps, weights / np.where(total != 0, total, 1), 0)
    inside = (centres >= -0.5) & (centres <= n - 0.5)
    return np.where(inside[:, None], weights, 0).astype(np.float32)


def scaled(hw: tuple[int, int], factor: float) -> tuple[int, int]:
    """``hw`` with its long side scaled by ``factor`` (a style image at a coarse pass)."""
    return images.fit_long_side(hw, max(1, round(factor * max(hw))))


def check_sizes(content_hw: tuple[int, int], style_hws: Sequence[tuple[int, int]], config: StyleConfig) -> None:
    """Refuse, with one line, a content or style image too small for the layers' poolings."""
    smallest = min_side(config.layers)
    for what, (height, width) in [("content", content_hw), *(("style", hw) for hw in style_hws)]:
        if min(height, width) < smallest:
            raise ValueError(f"{what} image is {width}x{height}; its layers need at least {smallest} px a side")


@dataclass(frozen=True)
class Pass:
    """One pass of coarse to fine: the picture's long side and size, its steps, and the steps of
    each compiled chunk (on a CPU sized to the pass's pixels: the small coarse passes of a big
    picture compile short chunks, a first look sooner; the big ones run longer, faster ones)."""

    side: int
    hw: tuple[int, int]
    steps: int
    chunk: int


def pass_plan(
    content_hw: tuple[int, int], style_hws: Sequence[tuple[int, int]], config: StyleConfig, backend: str | None = None
) -> list[Pass]:
    """Every pass, coarse to fine, for these image sizes on ``backend`` (the default one when
    None): what the run, its progress bar and its memory plan all follow.

    Passes too small for the layers (content or any style below ``vgg.min_side``) are dropped;
    steps are shared in whole chunks of the finest pass where they allow (see
    :func:`steps_per_pass`).
    """
    check_sizes(content_hw, style_hws, config)
    smallest = min_side(config.layers)

    def big_enough(side: int) -> bool:
        factor = side / max(content_hw)
        return all(min(scaled(hw, factor)) >= smallest for hw in [content_hw, *style_hws])

    def chunk(hw: tuple[int, int]) -> int:
        return config.chunk_size or default_chunk_size(backend, hw[0] * hw[1])

    sides = [side for side in config.pyramid(max(content_hw)) if big_enough(side)]
    sides = sides[-config.steps :] if config.steps else sides  # no pass without a step
    hws = [images.fit_long_side(content_hw, side) for side in sides]
    steps = steps_per_pass(config.total_steps(len(sides)), len(sides), config.ratio(len(sides)), chunk(content_hw))
    return [Pass(side, hw, n, chunk(hw)) for side, hw, n in zip(sides, hws, steps, strict=True)]


def steps_per_pass(steps: int, passes: int, ratio: float = 1.0, quantum: int = 1) -> list[int]:
    """``steps`` shared among ``passes`` (coarse first), each pass ``ratio`` times the next finer.

    Shares are rounded to whole ``quantum``s (a compiled chunk's length) where the steps allow,
    so no pass ends in a stray short chunk; the finest pass takes what rounding leaves over.
    """
    weights = [ratio ** (passes - 1 - k) for k in range(passes)]
    unit = quantum if steps >= quantum * passes else 1
    shares = [max(1, round(steps * w / sum(weights) / unit)) * unit for w in weights[:-1]]
    while sum(shares) >= steps and any(s > 1 for s in shares):  # too few steps: shrink the largest
        i = shares.index(max(shares))
        shares[i] = max(1, shares[i] - unit)
    return [*shares, steps - sum(shares)]


def next_pass(state: LoopState, hw: tuple[int, int], config: StyleConfig) -> LoopState:
    """The first state of a pass at size ``hw``, continuing from ``state`` at the previous size."""
    image = resize(state.average, hw)
    if config.optimizer != "adam":
        return LoopState.start(image, config)
    old = state.image.shape
    opt_state = jax.tree.map(lambda x: _resize(x, hw) if x.shape == old else x, state.opt_state)
    return LoopState.start(image, config, opt_state)
