"""Full ``jnst.stylize`` throughput (steps/s), compile time and peak memory, per optimiser and size.

Each test first clears JAX's caches and times two one-chunk calls: the first compiles, the second
does not, so compile time ~ first - second (it includes the targets' and the chunk's compilation).
The timed rounds then run ``--steps`` steps each through the public API, targets and host
transfers included. Peak memory comes from a fresh subprocess per size (see ``_memory.py``).
The batch suite times ``jnst.stylize_batch`` on ``--batches`` copies of the photo: images per
second beside the one-image rows.
"""

from __future__ import annotations

import jax
import pytest

from benchmarks._common import chunk_size, env_info, seconds, stylize_config
from benchmarks._memory import measure_in_subprocess
from jnst import stylize, stylize_batch


@pytest.mark.benchmark(group="stylize")
def test_stylize(benchmark, model, pair, size, optimizer, dtype, steps, rounds):
    """``steps`` optimiser steps per round at long side ``size``."""
    content, style = pair
    config = stylize_config(optimizer, steps, dtype)
    warm = config.replace(steps=chunk_size(content.shape[:2]))
    jax.clear_caches()
    first = seconds(lambda: stylize(content, style, warm, model=model))
    second = seconds(lambda: stylize(content, style, warm, model=model))

    benchmark.pedantic(stylize, args=(content, style, config), kwargs={"model": model}, rounds=rounds)

    benchmark.extra_info.update(
        kind="stylize",
        size=list(content.shape[:2]),
        optimizer=optimizer,
        dtype=dtype,
        batch=1,
        steps=steps,
        chunk_size=chunk_size(content.shape[:2]),
        first_call_s=first,
        compile_s=max(0.0, first - second),
        **measure_in_subprocess(size, steps, optimizer, dtype),
        **env_info(),
    )


@pytest.mark.benchmark(group="batch")
def test_stylize_batch(benchmark, model, pair, size, batch, dtype, steps, rounds):
    """``batch`` photos optimised together (``vmap``), ``steps`` L-BFGS steps per round."""
    content, style = pair
    config = stylize_config("lbfgs", steps, dtype)
    contents = [content] * batch
    stylize_batch(contents, style, [config.replace(steps=chunk_size(content.shape[:2]))], model=model)  # compile
    benchmark.pedantic(stylize_batch, args=(contents, style, [config]), kwargs={"model": model}, rounds=rounds)
    benchmark.extra_info.update(
        kind="batch", size=list(content.shape[:2]), dtype=dtype, batch=batch, steps=steps, **env_info()
    )
