"""VGG19 forward and loss value-and-gradient at each size: the two costs inside every step.

Forward: the network up to the deepest layer the default config reads (``block4_conv2``).
Value-and-gradient: ``jnst.objective.objective`` differentiated with respect to the image, jitted,
the core of one optimiser step. Compilation happens in a warm-up call before timing, and
every timed call blocks until its result is ready.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import pytest

from benchmarks._common import env_info, seconds
from jnst.config import StyleConfig
from jnst.objective import Weights, objective
from jnst.targets import compute_targets
from jnst.vgg import features

CONFIG = StyleConfig().compiled_part()
WEIGHTS = Weights.of(StyleConfig())
MIN_ROUND_S = 0.2  # calls per round are repeated up to this, so fast calls are not timer noise

forward = jax.jit(features, static_argnums=(0, 3))
value_and_grad = jax.jit(jax.value_and_grad(objective, has_aux=True), static_argnums=(1, 5))


def _bench(benchmark, fn: Callable[[], object], rounds: int, kind: str, hw: tuple[int, int]) -> None:
    """Compile ``fn`` outside timing, pick iterations per round from one timed call, then time it."""
    fn()
    iterations = max(1, math.ceil(MIN_ROUND_S / seconds(fn)))
    benchmark.extra_info.update(kind=kind, size=list(hw), last_layer=CONFIG.layers[-1], iterations=iterations)
    benchmark.extra_info.update(env_info())
    benchmark.pedantic(fn, rounds=rounds, iterations=iterations)


@pytest.mark.benchmark(group="vgg-forward")
def test_forward(benchmark, model, pair, rounds):
    """One VGG19 forward pass of the content image to the default config's deepest layer."""
    image = jnp.asarray(pair[0])[None]
    _bench(
        benchmark,
        lambda: jax.block_until_ready(forward(model.graphdef, model.params, image, CONFIG.layers)),
        rounds,
        "forward",
        image.shape[1:3],
    )


@pytest.mark.benchmark(group="vgg-value-and-grad")
def test_value_and_grad(benchmark, model, pair, rounds):
    """The default objective's value and image gradient, as each optimiser step computes them."""
    content, style = (jnp.asarray(x)[None] for x in pair)
    targets = compute_targets(model, content, [style], CONFIG)
    _bench(
        benchmark,
        lambda: jax.block_until_ready(value_and_grad(content, model.graphdef, model.params, targets, WEIGHTS, CONFIG)),
        rounds,
        "value_and_grad",
        content.shape[1:3],
    )
