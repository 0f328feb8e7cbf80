"""Where the arrays live: a mesh over the devices, and a batch or one image split across it.

``shard="batch"`` splits a batch's items over the devices (each device optimises its share);
``shard="space"`` splits one image along its height, so a picture too big for one device runs
on several: XLA partitions the convolutions with halo exchange and turns the Gram sums into
all-reduces, so the result is the one-device result, with no seams. The placement of the
inputs is chosen here and the compiled chunk follows it (``jax.jit`` propagates shardings);
for ``"space"`` the chunk also splits the image it feeds VGG19 (:func:`height_split`), since an
input whose height does not divide evenly stays whole.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

SHARDS = ("none", "batch", "space")
AXIS = "devices"


def make_mesh(count: int | None = None) -> Mesh:
    """A one-axis mesh over the first ``count`` devices (all visible ones when None)."""
    devices = jax.devices()
    count = len(devices) if count is None else count
    if not 1 <= count <= len(devices):
        raise ValueError(f"{count} devices asked for, {len(devices)} visible ({jax.default_backend()})")
    return Mesh(np.array(devices[:count]), (AXIS,))


def check_split(shard: str, mesh: Mesh, batch: int, height: int) -> None:
    """Refuse, with one line, a batch that does not divide over the devices or an image too
    low to split (each device needs a row at the deepest layers' 1/16 scale)."""
    if shard not in SHARDS:
        raise ValueError(f"shard must be one of {', '.join(SHARDS)}, got {shard!r}")
    n = mesh.size
    if shard == "batch" and batch % n:
        raise ValueError(f"a batch of {batch} does not split over {n} devices (--shard batch needs a multiple)")
    if shard == "space" and height < 16 * n:
        raise ValueError(f"an image (or coarse pass) {height} px high is too low to split over {n} devices")


def height_split(mesh: Mesh) -> NamedSharding:
    """An image (1, H, W, C) split along its height over ``mesh``; imposed inside the compiled
    step (:func:`jnst.loop.run_chunk`), where XLA pads a height that does not divide evenly."""
    return NamedSharding(mesh, PartitionSpec(None, AXIS))


def place(tree, mesh: Mesh, shard: str):
    """``tree`` put on ``mesh``: with ``"batch"`` every leaf's leading (batch) axis split, with
    ``"space"`` the height axis of every image-like leaf (..., H, W, C); an axis that does not
    divide evenly, and every other leaf, is replicated."""
    n = mesh.size

    def spec(leaf) -> PartitionSpec:
        shape = np.shape(leaf)
        axis = 0 if shard == "batch" else len(shape) - 3 if shard == "space" and len(shape) >= 4 else None
        if axis is None or not shape or shape[axis] % n:
            return PartitionSpec()
        return PartitionSpec(*([None] * axis), AXIS)

    return jax.tree.map(lambda leaf: jax.device_put(leaf, NamedSharding(mesh, spec(leaf))), tree)
