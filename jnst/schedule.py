"""Coarse to fine: how the steps are shared among passes, and how a pass hands its state on.

Each pass runs at a larger size (``StyleConfig.pyramid``). The next pass starts from this pass's
averaged iterate, resized, with Adam's moment estimates resized along with it so that the
optimiser does not restart cold (crowsonkb/style-transfer-pytorch); L-BFGS's curvature pairs
belong to the old size, so it starts afresh.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jnst.config import StyleConfig
from jnst.loop import LoopState

Array = jax.Array


def resize(image: Array, hw: tuple[int, int]) -> Array:
    """Resize (N, H, W, C) images to ``hw`` (antialiased linear), kept in [0, 1]."""
    return jnp.clip(_resize(image, hw), 0.0, 1.0)


def _resize(x: Array, hw: tuple[int, int]) -> Array:
    if tuple(x.shape[1:3]) == tuple(hw):
        return x
    return jax.image.resize(x, (x.shape[0], *hw, x.shape[3]), "linear", antialias=True)


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
