"""How much memory a run will need, before it runs, and how to make it fit: whole or in tiles.

A step's memory is read from XLA itself: the finest pass's compiled programs are lowered and
compiled for their shapes (nothing runs), and their memory analysis gives the bytes of
arguments, outputs and temporaries. The process's own resident memory (Python, JAX, VGG19's
weights) is added as measured when the plan is made, and ``RUNTIME_BYTES`` for the compiled
programs (calibrated against the measured peak). Coarser passes are smaller, so the finest
pass sets the peak. A tiled pass holds the whole picture's optimiser state and gradient, the
cut's map, every map tile's deep residuals between a step's forward and backward sweeps, and
one tile's programs at a time (see :mod:`jnst.tiled_objective`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jnst import segment, tiles
from jnst.config import StyleConfig
from jnst.loop import LoopState, run_chunk
from jnst.objective import Weights
from jnst.schedule import Pass
from jnst.targets import Targets
from jnst.tiled_loop import apply_gradient_jit
from jnst.tiled_objective import cut_grad, cut_statistics, picture_grad, picture_statistics, tile_box
from jnst.vgg import Model, features

# Tile sides tried, largest first, when a picture does not fit whole; then :func:`floor_tile`.
TILE_SIDES = (4096, 3072, 2048, 1536, 1024, 768, 512, 384, 256)
# What a run holds beyond XLA's analysis of its programs and the memory resident when the plan
# is made: the compiled programs themselves and the heap the compiler leaves behind. Measured on
# the 2-core CPU (benchmarks/print_size.py): 0.26-0.48 GB at 1024 and 2048 px, whole and tiled.
RUNTIME_BYTES = int(0.4 * 2**30)
# The share of a CPU host's available memory that a run plans for unless told (``--max-memory``):
# the rest is the desktop's. On the 24 GB machine that leaves 5.9 GB, where headless Chromium
# with three tabs of jnst's page held 1.7 GB, an idle ``jnst serve`` 0.2 GB, the OS 1.0 GB.
# An accelerator's memory is the run's own: it plans for all of it.
HOST_SHARE = 0.75
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int:
    """``12G``, ``800M``, ``1.5T`` or plain bytes, as bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if not match or float(match[1]) <= 0:
        raise ValueError(f"{text!r} is not a memory size (examples: 12G, 800M)")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def format_size(n: float) -> str:
    """Bytes as a short human size: ``1.9 GB``."""
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def resident_bytes() -> int:
    """This process's resident memory now (Linux ``/proc``; 0 where it cannot be read)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def available_bytes() -> int:
    """Memory a run may use: the accelerator's (its allocator's limit), or on a CPU the host's
    available memory plus what this process already holds."""
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"])
    try:
        with open("/proc/meminfo") as meminfo:
            free = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return free + resident_bytes()


def default_budget() -> tuple[int, str]:
    """The memory a run plans for without a limit of its own, and the rule, in words."""
    available = available_bytes()
    if jax.devices()[0].platform != "cpu":
        return available, f"the {format_size(available)} of the accelerator"
    return int(HOST_SHARE * available), f"3/4 of the {format_size(available)} available, the rest left to the desktop"


def _program_bytes(compiled) -> int:
    m = compiled.memory_analysis()
    return m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes


def _tree_bytes(tree) -> int:
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))


def _abstract_targets(model: Model, hw: tuple[int, int], config: StyleConfig) -> Targets:
    """Shapes of a pass's targets, without computing them."""
    image = jax.ShapeDtypeStruct((1, *hw, 3), jnp.float32)
    names = tuple(name for name, _ in config.content_layers)
    content = jax.eval_shape(lambda x: features(model.graphdef, model.params, x, names, config.padding), image)
    grams = {}
    for name, _ in config.style_layers:
        c = jax.eval_shape(lambda x, n=name: features(model.graphdef, model.params, x, (n,), config.padding)[n], image)
        grams[name] = jax.ShapeDtypeStruct((1, c.shape[-1], c.shape[-1]), jnp.float32)
    return Targets(content if names else {}, grams, {}, {})


def whole_bytes(model: Model, hw: tuple[int, int], config: StyleConfig, chunk: int, unroll: bool) -> int:
    """Bytes of one compiled chunk of ``chunk`` steps on a ``hw`` picture (XLA's analysis)."""
    compiled = config.compiled_part()
    image = jax.ShapeDtypeStruct((1, *hw, 3), jnp.float32)
    state = jax.eval_shape(lambda x: LoopState.start(x, compiled), image)
    weights = jax.eval_shape(lambda: Weights.of(config))
    lowered = run_chunk.lower(model.graphdef, model.params, _abstract_targets(model, hw, compiled), weights, state,
                              config=compiled, length=chunk, unroll=unroll)  # fmt: skip
    return _program_bytes(lowered.compile())


def tiled_bytes(model: Model, hw: tuple[int, int], config: StyleConfig, tile: int) -> int:
    """Bytes of a tiled step: the whole picture's state, gradient and targets, every tile's deep
    residuals, and the largest tile's programs (XLA's analysis)."""
    return sum(_tiled_parts(model, hw, config, tile))


def _tiled_parts(model: Model, hw: tuple[int, int], config: StyleConfig, tile: int) -> tuple[int, int]:
    """(bytes that grow with the picture, bytes of one tile's programs) of a tiled step."""
    compiled = config.compiled_part()
    image = jax.ShapeDtypeStruct((1, *hw, 3), jnp.float32)
    state = jax.eval_shape(lambda x: LoopState.start(x, compiled), image)
    targets = _abstract_targets(model, hw, compiled)
    net = (model.graphdef, model.params)
    tiling = tiles.step_plan(hw, tile, config.layers)

    def window(t: tiles.Tile, channels: int, dtype=compiled.compute_dtype) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((1, t.wy1 - t.wy0, t.wx1 - t.wx0, channels), dtype)

    t = _largest(tiling.picture)
    box, pixels = tile_box(t), window(t, 3, jnp.float32)
    sums, cut = jax.eval_shape(lambda w: picture_statistics(w, box, *net, targets, compiled), pixels)
    every, residuals, programs = sums, 0, []  # programs: (lowered, bytes of its arguments counted elsewhere)
    if cut is not None:
        channels = cut.shape[-1]

        def traced(m: tiles.Tile):
            """The shapes of map tile ``m``'s sums and residuals (traced, not run)."""
            b = tile_box(m)
            return jax.eval_shape(lambda w: cut_statistics(w, b, *net, targets, compiled), window(m, channels))

        # Every map tile's residuals live from its forward to its backward: all of them at the
        # sweeps' turn. (At most four window shapes, each traced once.)
        shapes = {}
        for m in tiling.cut:
            shape = window(m, channels).shape
            if shape not in shapes:
                shapes[shape] = traced(m)
            residuals += _tree_bytes(shapes[shape][1])
        m = _largest(tiling.cut)
        mbox, mwindow = tile_box(m), window(m, channels)
        deep_sums, res = shapes[mwindow.shape]
        every = {**sums, **deep_sums}
        counted = _tree_bytes(targets) + _tree_bytes(res)
        forward = cut_statistics.lower(mwindow, mbox, *net, targets, compiled)
        backward = cut_grad.lower(mbox, every, res, *net, targets, compiled, mwindow.shape)
        programs += [(forward, counted), (backward, counted)]
    forward = picture_statistics.lower(pixels, box, *net, targets, compiled)
    backward = picture_grad.lower(pixels, box, every, cut, *net, targets, compiled)
    programs += [(forward, _tree_bytes(targets)), (backward, _tree_bytes(targets))]
    program = max(_program_bytes(p.compile()) - counted for p, counted in programs)
    # The cut's map and its gradient (never alive together) live beside the residuals; the
    # optimiser's update on the whole picture runs after the sweeps, when no residual or tile
    # program is alive; its temporaries (L-BFGS's two-loop recursion keeps several picture-sized
    # buffers) grow with the picture like the residuals, so the larger of the two is counted
    # with the picture (and the tile's program beside it: on the safe side).
    cut_map = 0 if cut is None else hw[0] // tiles.UNIT * (hw[1] // tiles.UNIT) * cut.shape[-1] * cut.dtype.itemsize
    update = apply_gradient_jit.lower(state, image, compiled).compile().memory_analysis().temp_size_in_bytes
    return _tree_bytes(state) + 2 * image.size * 4 + _tree_bytes(targets) + max(update, residuals + cut_map), program


def floor_tile(layers: tuple[str, ...]) -> int:
    """The smallest tiles a plan tries for ``layers``: those whose map tiles are four halos wide.
    Smaller ones read mostly halo, and their residuals grow faster than their programs shrink."""
    smallest, step = tiles.smallest_tile(layers), tiles.grid(layers)
    if not segment.deep_layers(layers):
        return smallest
    return max(smallest, -(-2 * 4 * tiles.cut_halo(layers) // step) * step)


def _largest(plan: Sequence[tiles.Tile]) -> tiles.Tile:
    """The tile of ``plan`` with the largest window."""
    return max(plan, key=_window_pixels)


@dataclass(frozen=True)
class Plan:
    """What a run will do and need: its passes, the finest pass's tiles, and its peak memory."""

    passes: tuple[Pass, ...]
    tile: int
    tiles: int
    peak: int
    budget: int

    def describe(self) -> str:
        """A few lines for people (``jnst stylize --dry-run``)."""
        passes = ", ".join(f"{p.side} px x {p.steps}" for p in self.passes)
        (height, width), chunk = self.passes[-1].hw, self.passes[-1].chunk
        how = (
            f"in {self.tiles} tiles of at most {self.tile} px"
            if self.tile
            else f"whole, {chunk} step{'s' * (chunk > 1)} a chunk"
        )
        return "\n".join([
            f"passes (long side x steps): {passes}",
            f"finest pass: {width}x{height}, {how}, on {jax.device_count()} {jax.default_backend()} device(s)",
            f"peak memory: {format_size(self.peak)} of the {format_size(self.budget)} allowed",
        ])  # fmt: skip


def plan_memory(
    model: Model, config: StyleConfig, passes: Sequence[Pass], *, unroll: bool, budget: int, tile: int = 0
) -> Plan:
    """The plan for these ``passes`` (:func:`jnst.schedule.pass_plan`), from their finest: whole
    if it fits in ``budget`` bytes, else in the
    largest tiles that fit (``tile`` > 0 forces that tile size). Raises ValueError, naming the
    largest long side that fits, when even the smallest tiles do not."""
    passes = tuple(passes)
    hw, chunk = passes[-1].hw, passes[-1].chunk
    base = resident_bytes() + RUNTIME_BYTES
    if tile:
        count = len(tiles.step_plan(hw, tile, config.layers).picture)
        if count == 1:
            return Plan(passes, 0, 1, base + whole_bytes(model, hw, config, chunk, unroll), budget)
        return Plan(passes, tile, count, base + tiled_bytes(model, hw, config, tile), budget)
    peak = base + whole_bytes(model, hw, config, chunk, unroll)
    if peak <= budget:
        return Plan(passes, 0, 1, peak, budget)
    # A tile's program grows with its window's pixels: measured once at 1024 px, then the largest
    # tile estimated to fit is measured exactly (each measurement is a compilation).
    picture, program = _tiled_parts(model, hw, config, 1024)
    per_pixel = program / _window_pixels(_largest_tile(hw, 1024, config.layers))
    smallest = floor_tile(config.layers)
    for side in [*(s for s in TILE_SIDES if smallest < s < max(hw)), smallest]:
        if base + picture + per_pixel * _window_pixels(_largest_tile(hw, side, config.layers)) <= budget:
            peak = base + tiled_bytes(model, hw, config, side)
            if peak <= budget:
                return Plan(passes, side, len(tiles.step_plan(hw, side, config.layers).picture), peak, budget)
    picture, program = _tiled_parts(model, hw, config, smallest)
    largest = int(max(hw) * (max(0.0, budget - base - program) / picture) ** 0.5)
    fits = f"the largest that fits is about {largest} px on its long side" if largest >= 16 else "no picture fits"
    raise ValueError(
        f"a {hw[1]}x{hw[0]} picture does not fit in {format_size(budget)} even in the smallest tiles "
        f"({format_size(base + picture + program)}, of which {format_size(base)} is JAX, VGG19 and the compiled "
        f"programs): {fits}"
    )


def _largest_tile(hw: tuple[int, int], tile: int, layers: tuple[str, ...]) -> tiles.Tile:
    """The picture tile with the largest window of a step on ``hw`` in tiles of ``tile`` px."""
    return _largest(tiles.step_plan(hw, tile, layers).picture)


def _window_pixels(t: tiles.Tile) -> int:
    return (t.wy1 - t.wy0) * (t.wx1 - t.wx0)
