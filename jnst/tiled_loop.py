"""The optimiser's loop for a picture too big for memory, beside :mod:`jnst.loop`'s compiled
chunks: steps run from Python, each on a gradient computed tile by tile."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jnst.config import StyleConfig
from jnst.loop import LoopState, apply_gradient
from jnst.objective import Weights
from jnst.tiled_objective import Replica, value_and_grad
from jnst.tiles import Tiling

Array = jax.Array

# One optimiser update from a tiled gradient, in place: the state is donated.
apply_gradient_jit = jax.jit(apply_gradient, static_argnames="config", donate_argnames="state")


def _distinct_buffers(state: LoopState) -> LoopState:
    """``state`` with no buffer twice, so that it can be donated: a pass's start shares one
    between the image and its average, and an optimiser's empty state may share its zeros. Only
    those are copied: the caller still holds the state it passed, and a copy of all of it was a
    second state (24 pictures, 5 GB at 5000 px) alive through the first step. A tiled state is
    on one device (tiles refuse ``shard``), so a buffer is its pointer."""
    seen = set()

    def once(leaf: Array) -> Array:
        if leaf.unsafe_buffer_pointer() in seen:
            return jnp.copy(leaf)
        seen.add(leaf.unsafe_buffer_pointer())
        return leaf

    return jax.tree.map(once, state)


def run_steps(
    tiling: Tiling, graphdef: nnx.GraphDef, replicas: Sequence[Replica], weights: Weights, state: LoopState,
    *, config: StyleConfig, length: int, on_tile: Callable[[str, int, int], None] | None = None,
) -> tuple[LoopState, dict[str, Array]]:  # fmt: skip
    """``length`` optimiser steps on tiled gradients: :func:`jnst.loop.run_chunk` for a picture
    that does not fit in memory whole (the steps run from Python, tile after tile; ``replicas``
    and ``on_tile`` as in :func:`jnst.tiled_objective.value_and_grad`)."""
    history = []
    state = _distinct_buffers(state)
    for _ in range(length):
        (total, terms), grad = value_and_grad(state.image, graphdef, replicas, weights, config, tiling, on_tile)
        state = apply_gradient_jit(state, grad, config)
        history.append({"total": total, **terms})
    return state, {k: jnp.stack([h[k] for h in history]) for k in history[0]}
