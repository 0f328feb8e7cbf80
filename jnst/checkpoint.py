"""Checkpoints of a long run: stop it anywhere (Ctrl-C, SIGTERM, SIGKILL, a crash) and resume it
to the image the uninterrupted run would have made, bit for bit (same backend, same devices).

A checkpoint is a :class:`Position`, taken at a chunk boundary: the loop's state (pixels,
optimiser state, averaged iterate, the pass's step count), the step, the pass, the loss history
and the snapshots so far. The loop draws random numbers only for its first image (which the state
holds from the first chunk on), and the seed is in the fingerprinted config, so there is no
further PRNG state to carry. Resuming re-enters the pass at that step and runs the same compiled
chunks on the same arrays, restored exactly (float32 bytes), so the rest of the run is the same.

Each checkpoint carries a :func:`fingerprint` of the run (every config field, the input images'
and the model's bytes, the backend, the device count and layout, the JAX version); a checkpoint
from another run is refused with one line naming what differs.

Format: ``FOLDER/step_NNNNNNNN/``, written by orbax-checkpoint (``StandardCheckpointHandler``, the
JAX ecosystem's library; about 0.1 s for a 64 px run's state, 2-core EPYC) plus ``jnst.json``
(step, pass, snapshot steps, fingerprint). Orbax makes a checkpoint atomic by a rename but does
not fsync, so it writes to a temporary folder, every file and folder in it is fsynced, and only
then is it renamed into place (and the parent folder fsynced); older checkpoints and temporary
leftovers are removed after that. A kill at any moment leaves the previous checkpoint complete.
Test seam: ``JNST_TEST_CHECKPOINT_DELAY`` (seconds) sleeps before that rename, so that a test can
kill a process in the middle of a write.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnst.config import StyleConfig
from jnst.devices import to_host

FORMAT = 1
META = "jnst.json"
PREFIX = "step_"
PARTIAL = ".partial_"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: missing, damaged, or made by another run (one line)."""


@dataclass
class Position:
    """How far a run got, at a chunk boundary: all that the loop needs to go on as if never stopped.

    Attributes:
      step: steps done.
      pass_index: the pass (coarse to fine) that ``state`` belongs to.
      state: the :class:`jnst.loop.LoopState` (a batch's stacked); a loaded checkpoint holds its
        leaves as a flat list of NumPy arrays, for :func:`restore_state`.
      history: the per-chunk loss terms so far.
      snapshots: ``(step, images)`` snapshots so far, one image per item.
    """

    step: int
    pass_index: int
    state: Any
    history: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[tuple[int, list[np.ndarray]]] = field(default_factory=list)


def digest(tree: Any) -> str:
    """A short hash of the shapes, dtypes and bytes of a tree's arrays (an array, or model params)."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        array = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{array.shape} {array.dtype};".encode())
        h.update(array.view(np.uint8))
    return h.hexdigest()[:16]


def fingerprint(configs: Sequence[StyleConfig], inputs: Mapping[str, Sequence[Any]], **setup: object) -> dict[str, str]:
    """What a run's result depends on, by name: every field of each item's config (the whole
    dataclass, whatever its fields and defaults), a hash of each input (``inputs``: a kind, e.g.
    ``"style"``, to its arrays or trees; ``None``: absent), the backend, the device count, the
    JAX version and each ``setup`` value."""
    items = [""] if len(configs) == 1 else [f"[{i}]" for i in range(len(configs))]
    found = {
        f"config{item}.{f.name}": repr(getattr(cfg, f.name))
        for item, cfg in zip(items, configs, strict=True)
        for f in dataclasses.fields(cfg)
    }
    for kind, trees in inputs.items():
        names = [kind] if len(trees) == 1 else [f"{kind} {i + 1}" for i in range(len(trees))]
        found.update({name: "absent" if t is None else digest(t) for name, t in zip(names, trees, strict=True)})
    setup = {"backend": jax.default_backend(), "devices": len(jax.devices()), "jax": jax.__version__, **setup}
    found.update({name: str(value) for name, value in setup.items()})
    return found


def start(
    checkpoints: Checkpoints | None,
    configs: Sequence[StyleConfig],
    inputs: Mapping[str, Sequence[Any]],
    **setup: object,
) -> Position:
    """Where a run starts: the position ``checkpoints`` resumes from (:meth:`Checkpoints.begin`, told
    the run's :func:`fingerprint`), else the beginning."""
    position = Position(0, 0, None)
    if checkpoints is None:
        return position
    return checkpoints.begin(fingerprint(configs, inputs, **setup)) or position


def differences(saved: Mapping[str, str], expected: Mapping[str, str]) -> list[str]:
    """What differs between two fingerprints: an input's name, any other entry's name and values."""
    out = []
    for name in [*expected, *(n for n in saved if n not in expected)]:
        old, new = saved.get(name, "absent"), expected.get(name, "absent")
        if old != new:
            out.append(name if _is_digest(old) and _is_digest(new) else f"{name} {old} -> {new}")
    return out


def _is_digest(value: str) -> bool:
    return value == "absent" or (len(value) == 16 and all(c in "0123456789abcdef" for c in value))


def restore_state(leaves: list[np.ndarray], template: Any) -> Any:
    """A loaded state's leaves as arrays in ``template``'s tree (its shapes and dtypes checked)."""
    expected = jax.tree.leaves(template)
    if [(np.shape(x), np.dtype(x.dtype)) for x in leaves] != [(x.shape, np.dtype(x.dtype)) for x in expected]:
        raise CheckpointError("the checkpoint's state does not fit this run's (damaged checkpoint?)")
    return jax.tree.unflatten(jax.tree.structure(template), [jnp.asarray(x) for x in leaves])


def remaining(lengths: list[int], start: int, done: int) -> list[int]:
    """The chunk lengths (:func:`jnst.loop.segments`, 0 a snapshot) of a pass that began at step
    ``start`` still to run after ``done`` steps: the chunks a resumed run skips are those ending by
    ``done``, and the snapshots before it (a position is taken before the snapshot at its step)."""
    out, step = [], start
    for length in lengths:
        if step + length > done or (length == 0 and step == done):
            out.append(length)
        step += length
    return out


def _fsync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder``, ``folder`` itself last."""
    for root, _, files in os.walk(folder, topdown=False):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(root))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _steps(folder: Path) -> list[Path]:
    """The complete checkpoints in ``folder``, oldest first."""
    found = [p for p in folder.glob(PREFIX + "*") if p.name[len(PREFIX) :].isdigit()] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def save(folder: Path, position: Position, fingerprint: Mapping[str, str]) -> Path:
    """Write ``position`` as the newest checkpoint in ``folder``, atomically; returns its path."""
    import orbax.checkpoint as ocp

    history = to_host(position.history)
    tree = {
        "state": [np.asarray(x) for x in to_host(jax.tree.leaves(position.state))],
        "history": {k: np.concatenate([h[k] for h in history], axis=-1) for k in history[0]},
    }
    if position.snapshots:
        tree["snapshots"] = np.stack([np.stack(images) for _, images in position.snapshots])
    meta = {
        "format": FORMAT,
        "step": position.step,
        "pass": position.pass_index,
        "snapshot_steps": [s for s, _ in position.snapshots],
        "fingerprint": dict(fingerprint),
    }
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{PREFIX}{position.step:08d}"
    partial = folder / f"{PARTIAL}{final.name}_{os.getpid()}_{time.monotonic_ns()}"
    ocp.Checkpointer(ocp.StandardCheckpointHandler()).save(partial, tree)
    (partial / META).write_text(json.dumps(meta))
    _fsync_tree(partial)
    time.sleep(float(os.environ.get("JNST_TEST_CHECKPOINT_DELAY", 0)))
    os.rename(partial, final)
    _fsync_dir(folder)
    for other in folder.iterdir():
        if other != final:
            shutil.rmtree(other) if other.is_dir() else other.unlink()
    return final


def load(folder: Path, expected: Mapping[str, str]) -> Position:
    """The newest checkpoint in ``folder``; a :class:`CheckpointError` when there is none, when it
    is damaged, or when its fingerprint differs from ``expected`` (naming what differs)."""
    import orbax.checkpoint as ocp

    found = _steps(folder)
    if not found:
        raise CheckpointError(f"no checkpoint in {folder} to resume")
    path = found[-1]
    try:
        meta = json.loads((path / META).read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable checkpoint ({err})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')}, this jnst reads {FORMAT}")
    diffs = differences(meta["fingerprint"], expected)
    if diffs:
        raise CheckpointError(f"{folder} is from another run ({'; '.join(diffs)}): delete it to start over")
    try:
        tree = ocp.Checkpointer(ocp.StandardCheckpointHandler()).restore(path)
    except Exception as err:  # noqa: BLE001 - orbax and tensorstore raise many kinds on damaged files
        raise CheckpointError(f"{path}: damaged checkpoint ({type(err).__name__})") from None
    shots = tree.get("snapshots")
    snapshots = [(s, list(shots[i])) for i, s in enumerate(meta["snapshot_steps"])]
    return Position(meta["step"], meta["pass"], list(tree["state"]), [tree["history"]], snapshots)


class Checkpoints:
    """A run's checkpoints in one folder: when to save (every ``every_steps`` steps, rounded up to
    a chunk boundary, and at least every ``every_seconds`` of wall time; 0 turns either off),
    resuming (``resume``), the newest position for an interrupt, and the clean-up at the end."""

    def __init__(self, folder: Path, *, every_steps: int = 0, every_seconds: float = 0.0, resume: bool = False):
        self.folder = Path(folder)
        self.every_steps, self.every_seconds, self.resume = every_steps, every_seconds, resume
        self.fingerprint: dict[str, str] = {}
        self.latest: Position | None = None
        self.saved_step = -1
        self._last_save = time.monotonic()
        self._writing = False
        self._pending_signal = False

    def begin(self, fingerprint: dict[str, str]) -> Position | None:
        """Called by the loop before its first step: the position to resume from, or None (a fresh
        run, which first removes the folder's checkpoints)."""
        self.fingerprint = fingerprint
        if not self.resume:
            shutil.rmtree(self.folder, ignore_errors=True)
            return None
        self.latest = load(self.folder, fingerprint)
        self.saved_step = self.latest.step
        return self.latest

    def reached(self, position: Position) -> None:
        """Called by the loop after every chunk (``position`` holds device arrays, so this is cheap
        unless a checkpoint is due)."""
        self.latest = position
        by_steps = self.every_steps and position.step // self.every_steps > max(self.saved_step, 0) // self.every_steps
        by_time = self.every_seconds and time.monotonic() - self._last_save >= self.every_seconds
        if by_steps or by_time:
            self.save_latest()

    def save_latest(self) -> Path | None:
        """Save the newest position unless it is saved already; the checkpoint's path (None before
        the first chunk). SIGINT and SIGTERM wait until the write is done (see :meth:`on_signal`)."""
        if self.latest is None:
            return None
        if self.saved_step != self.latest.step:
            self._writing = True
            try:
                save(self.folder, self.latest, self.fingerprint)
            finally:
                self._writing = False
            self.saved_step, self._last_save = self.latest.step, time.monotonic()
            if self._pending_signal:
                self._pending_signal = False
                raise KeyboardInterrupt
        return _steps(self.folder)[-1]

    def finish(self, keep: bool) -> None:
        """After a successful run: keep the final position as the checkpoint, or remove the folder."""
        if keep:
            self.save_latest()
        else:
            shutil.rmtree(self.folder, ignore_errors=True)

    def on_signal(self, signum: int, frame: object) -> None:
        """A handler for SIGINT and SIGTERM: KeyboardInterrupt, once any checkpoint being written is
        complete."""
        if self._writing:
            self._pending_signal = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """Within the block, SIGINT and SIGTERM interrupt the run through :meth:`on_signal`."""
        previous = {sig: signal.signal(sig, self.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
