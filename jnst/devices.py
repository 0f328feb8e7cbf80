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

import os
from dataclasses import dataclass

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

SHARDS = ("none", "batch", "space")
AXIS = "devices"


def join_cluster(coordinator: str | None = None, processes: int | None = None, process_id: int | None = None) -> None:
    """Join a multi-host run (``jax.distributed.initialize``), before anything else uses JAX.

    Arguments left None come from ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID``, else from the cluster's own environment (SLURM, Open MPI, a TPU pod
    slice), as JAX detects it. Afterwards ``jax.devices()`` lists every process's devices, so
    :func:`make_mesh` spans the hosts. CPU hosts exchange data over gloo.
    """
    env = lambda name: int(os.environ[name]) if name in os.environ else None  # noqa: E731
    processes = env("JAX_NUM_PROCESSES") if processes is None else processes
    process_id = env("JAX_PROCESS_ID") if process_id is None else process_id
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, processes, process_id)


def make_mesh(count: int | None = None) -> Mesh:
    """A one-axis mesh over the first ``count`` devices (all visible ones when None)."""
    return Mesh(np.array(_first(jax.devices(), count)), (AXIS,))


def local_devices(count: int | None = None) -> list[jax.Device]:
    """The first ``count`` of this process's devices (all when None): what tiles spread over."""
    return _first(jax.local_devices(), count)


def _first(devices: list[jax.Device], count: int | None) -> list[jax.Device]:
    """The first ``count`` of ``devices`` (all when None), or one line saying how many there are."""
    count = len(devices) if count is None else count
    if not 1 <= count <= len(devices):
        raise ValueError(f"{count} devices asked for, {len(devices)} visible ({jax.default_backend()})")
    return devices[:count]


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


@dataclass(frozen=True)
class Placement:
    """Where a run's arrays live: over ``mesh`` as ``shard`` says (no mesh for ``"none"``), and the
    devices its tiles spread over (none for a run without tiles)."""

    shard: str
    mesh: Mesh | None
    tile_devices: list[jax.Device]

    @classmethod
    def of(cls, shard: str, count: int | None, tiled: bool, batch: int, height: int) -> Placement:
        """The placement of a run on ``count`` devices (all when None) of a ``batch`` whose first pass
        is ``height`` px high; or one line saying why it does not split (:func:`check_split`)."""
        mesh = None if shard == "none" else make_mesh(count)
        tile_devices = local_devices(count) if tiled else []
        if mesh is not None:
            check_split(shard, mesh, batch, height)
        return cls(shard, mesh, tile_devices)

    @property
    def split(self) -> NamedSharding | None:
        """The split the compiled step imposes on the image it feeds VGG19 (:func:`height_split`)."""
        return height_split(self.mesh) if self.shard == "space" else None

    def put(self, tree):
        """``tree`` on the mesh (:func:`place`), or as it is without one."""
        return tree if self.mesh is None else place(tree, self.mesh, self.shard)


def to_host(tree):
    """``tree``'s arrays as whole NumPy arrays on this host; an array that spans other processes'
    devices (a multi-host run) is all-gathered, so every process must call this at the same point."""

    def fetch(leaf) -> np.ndarray:
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
        return np.asarray(leaf)

    return jax.tree.map(fetch, tree)
