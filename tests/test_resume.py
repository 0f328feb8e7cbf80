"""Long runs: checkpoints, resume, signals and the numeric guard.

The promise: a run stopped anywhere (an exception at a chunk boundary, SIGKILL during a chunk,
during a pass change or during a checkpoint write, SIGTERM) and resumed gives the uninterrupted
run's image bit for bit. ``JNST_KILL_TRIALS`` sets how many kill chains the subprocess test runs.
"""

from __future__ import annotations

import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jnst import StyleConfig, checkpoint, cli, compile_cache, stylize
from jnst.checkpoint import CheckpointError, Checkpoints, Position
from jnst.loop import DivergedError

stylize_module = sys.modules["jnst.stylize"]

# Two passes (32 and 64 px) of 4 one-step chunks: L-BFGS's state, the averaged iterate and the
# snapshots all have to come back exactly. Every field that matters is set, whatever the defaults.
CFG = StyleConfig(steps=8, chunk_size=1, scales=(32,), pass_ratio=1.0, optimizer="lbfgs", ema=0.5, snapshot_every=3)


class Stop(Exception):
    """Raised from a callback: the run stops as a crash would."""


def stop_at(step: int):
    def callback(done: int, _terms, _image) -> None:
        if done >= step:
            raise Stop

    return callback


@pytest.fixture(scope="module")
def reference(model, small_pair):
    return stylize(*small_pair, CFG, model=model)


def assert_same_run(result, reference) -> None:
    np.testing.assert_array_equal(result.image, reference.image)
    for key, losses in reference.losses.items():
        np.testing.assert_array_equal(result.losses[key], losses)
    assert [s for s, _ in result.snapshots] == [s for s, _ in reference.snapshots]
    for (_, a), (_, b) in zip(result.snapshots, reference.snapshots, strict=True):
        np.testing.assert_array_equal(a, b)


# The checkpoint is the step before `stop`: 2 (mid-pass, before the snapshot at 3), 4 (the end of
# the first pass) or 6 (the second pass, before the snapshot at 6).
@pytest.mark.parametrize("stop", [3, 5, 7], ids=["mid-pass", "end of pass", "second pass"])
def test_resumed_run_is_bitwise_the_uninterrupted_one(model, small_pair, reference, tmp_path, stop):
    folder = tmp_path / "ckpt"
    with pytest.raises(Stop):
        stylize(*small_pair, CFG, model=model, callback=stop_at(stop), checkpoints=Checkpoints(folder, every_steps=1))
    # The callback stopped the run before the position at `stop` was handed on: the checkpoint
    # is the step before.
    assert [p.name for p in folder.iterdir()] == [f"step_{stop - 1:08d}"]
    resumed = Checkpoints(folder, resume=True)
    result = stylize(*small_pair, CFG, model=model, checkpoints=resumed)
    assert resumed.saved_step == stop - 1  # loaded, and nothing saved since (no every_steps)
    assert_same_run(result, reference)


def test_checkpoint_of_another_run_is_refused_naming_what_differs(model, small_pair, tmp_path):
    content, style = small_pair
    folder = tmp_path / "ckpt"
    with pytest.raises(Stop):
        stylize(content, style, CFG, model=model, callback=stop_at(2), checkpoints=Checkpoints(folder, every_steps=1))

    def never(*_):
        raise AssertionError("a refused checkpoint must stop the run before its first chunk")

    other_style = style[::-1].copy()
    for args, cfg, fragments in [
        ((content, style), CFG.replace(style_weight=2.0), ["config.style_weight None -> 2.0"]),
        ((content, other_style), CFG, ["style"]),
        ((content, other_style), CFG.replace(seed=3), ["config.seed 0 -> 3", "style"]),
    ]:
        with pytest.raises(CheckpointError) as err:
            stylize(*args, cfg, model=model, callback=never, checkpoints=Checkpoints(folder, resume=True))
        message = str(err.value)
        assert "\n" not in message and message.startswith(f"{folder} is from another run")
        named = message.split(" (", 1)[1]
        for fragment in fragments:
            assert fragment in named
        assert "content" not in named and "model" not in named


def test_fingerprint_covers_every_config_field_and_input():
    cfg = StyleConfig()
    image = np.zeros((8, 8, 3), np.float32)
    base = checkpoint.fingerprint([cfg], {"content": [image], "masks": [None]})
    assert {f"config.{name}" for name in cfg.__dataclass_fields__} < set(base)
    changed = image.copy()
    changed[0, 0, 0] = 1e-7
    assert checkpoint.differences(base, checkpoint.fingerprint([cfg], {"content": [changed], "masks": [None]})) == [
        "content"
    ]
    other = checkpoint.fingerprint([cfg.replace(chunk_size=3)], {"content": [image], "masks": [image[..., 0]]})
    assert checkpoint.differences(base, other) == ["config.chunk_size 0 -> 3", "masks"]


def test_when_checkpoints_are_saved(tmp_path, monkeypatch):
    """Every N steps rounded up to a chunk's end, and at least every so many seconds."""
    clock = [0.0]
    monkeypatch.setattr(checkpoint.time, "monotonic", lambda: clock[0])

    def saves(checkpoints: Checkpoints, seconds_a_chunk: float) -> list[int]:
        saved = []
        for step in range(5, 45, 5):  # chunks of 5 steps
            clock[0] += seconds_a_chunk
            checkpoints.reached(Position(step, 0, [np.full(3, step, np.float32)], [{"total": np.zeros(5)}]))
            saved.append(checkpoints.saved_step)
        return sorted(set(saved) - {-1})

    assert saves(Checkpoints(tmp_path / "a", every_steps=12), 1.0) == [15, 25, 40]
    assert saves(Checkpoints(tmp_path / "b", every_seconds=100), 30.0) == [20, 40]
    position = checkpoint.load(tmp_path / "b", {})
    assert (position.step, position.state[0].tolist()) == (40, [40.0] * 3)
    assert position.history[0]["total"].shape == (5,)


def test_remaining_chunks_after_a_checkpoint():
    # A pass from step 10: chunks of 2 and a snapshot (0) at step 12 and 15.
    lengths = [2, 0, 2, 1, 0]
    assert checkpoint.remaining(lengths, 10, 10) == lengths
    assert checkpoint.remaining(lengths, 10, 12) == [0, 2, 1, 0]  # the snapshot at 12 is still to take
    assert checkpoint.remaining(lengths, 10, 14) == [1, 0]
    assert checkpoint.remaining(lengths, 10, 15) == [0]
    assert checkpoint.remaining(lengths, 0, 15) == []


def test_overflowing_weight_diverges_at_the_first_step(model, small_pair):
    seen = []
    with pytest.raises(DivergedError) as err:
        stylize(*small_pair, CFG.replace(style_weight=1e38), model=model, callback=lambda *a: seen.append(a))
    assert err.value.step == 1 and err.value.what == "loss is inf"
    assert str(err.value) == "diverged at step 1 (loss is inf): lower the learning rate or the weights"
    assert seen == []


@pytest.fixture
def poisoned(monkeypatch):
    """The third compiled chunk returns NaN pixels (its iterate and so its average) and an Inf
    loss at its step: a divergence forced at a known chunk."""
    real, calls = stylize_module.run_chunk, []

    def run_chunk(*args, **kwargs):
        state, terms = real(*args, **kwargs)
        calls.append(kwargs["length"])
        if len(calls) == 3:
            state = state._replace(image=state.image * np.nan, average=state.average * np.nan)
            terms = {**terms, "total": terms["total"].at[-1].set(np.inf)}
        return state, terms

    monkeypatch.setattr(stylize_module, "run_chunk", run_chunk)


def test_divergence_stops_at_its_chunk_keeping_the_last_good_checkpoint(model, small_pair, tmp_path, poisoned):
    seen = []
    checkpoints = Checkpoints(tmp_path / "ckpt", every_steps=1)
    with pytest.raises(DivergedError) as err:
        stylize(*small_pair, CFG, model=model, checkpoints=checkpoints, callback=lambda s, _, im: seen.append((s, im)))
    assert (err.value.step, err.value.what) == (3, "loss is inf")
    assert [s for s, _ in seen] == [1, 2] and all(np.isfinite(im).all() for _, im in seen)
    kept = checkpoint.load(tmp_path / "ckpt", checkpoints.fingerprint)
    assert kept.step == 2 and all(np.isfinite(x).all() for x in kept.state)


def test_pixels_that_turn_nan_are_caught_too(poisoned, model, small_pair, monkeypatch):
    real = stylize_module.run_chunk

    def finite_loss(*args, **kwargs):
        state, terms = real(*args, **kwargs)
        return state, {**terms, "total": np.nan_to_num(terms["total"], posinf=1.0)}

    monkeypatch.setattr(stylize_module, "run_chunk", finite_loss)
    with pytest.raises(DivergedError) as err:
        stylize(*small_pair, CFG, model=model)
    assert (err.value.step, err.value.what) == (3, "pixels are nan")


# --- the command line -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair(shared_images) -> list[str]:
    return [str(shared_images / "tubingen.jpg"), str(shared_images / "starry_night.jpg")]


def test_resume_flags_are_checked_before_anything_runs(capsys, pair, tmp_path):
    out = tmp_path / "out.png"
    code = cli.main(["stylize", *pair, "-o", str(out), "--resume"])
    assert code == cli.EXIT_USAGE and f"no checkpoint at {out}.ckpt to resume" in capsys.readouterr().err
    (tmp_path / "out.png.ckpt").mkdir()
    code = cli.main(["stylize", *pair, "-o", str(out)])
    assert code == cli.EXIT_USAGE and "add --resume to continue that run" in capsys.readouterr().err
    code = cli.main(["stylize", pair[0], "--style", pair[1], "-o", f"{tmp_path}/", "--resume"])
    assert code == cli.EXIT_USAGE and "--resume works with one content image" in capsys.readouterr().err
    assert not out.exists()


def test_cli_divergence_exit_code_last_good_image_and_checkpoint(capsys, pair, tmp_path, poisoned, monkeypatch):
    monkeypatch.setattr(compile_cache, "enable", lambda: None)  # JAX's settings stay as they are
    out = tmp_path / "out.png"
    code = cli.main(["stylize", *pair, "-o", str(out), "--size", "48", "--steps", "6", "--quiet", "--scales", "none"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_DIVERGED == 3
    assert err.splitlines() == [
        "jnst: diverged at step 3 (loss is inf): lower the learning rate or the weights; wrote the last good "
        f"image (step 2) to {out}, its checkpoint in {out}.ckpt"
    ]  # chunks of one step at this size: the third chunk is step 3
    assert out.exists() and [p.name for p in Path(f"{out}.ckpt").iterdir()] == ["step_00000002"]


# --- SIGKILL, SIGTERM and resume, in real processes ----------------------------------------------

# Two passes of 16 and 14 steps (shared in whole chunks of 2), a checkpoint after every chunk. Adam: each process
# traces its chunks anew, and L-BFGS's update takes 40% of that (the API tests above cover it).
KILL_ARGS = ["--size", "48", "--steps", "30", "--scales", "32", "--pass-ratio", "1", "--optimizer", "adam"]
KILL_ARGS += ["--checkpoint-every", "1"]


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as stderr:
        return subprocess.Popen([sys.executable, "-m", "jnst", *argv], stdout=subprocess.DEVNULL, stderr=stderr,
                                env=env)  # fmt: skip


def wait_for(proc: subprocess.Popen, log: Path, ready, what: str) -> None:
    deadline = time.monotonic() + 120
    while not ready():
        assert proc.poll() is None, f"exited before {what}: {log.read_text(errors='replace')}"
        assert time.monotonic() < deadline, f"no {what} after 120 s"
        time.sleep(0.01)


def steps_saved(folder: Path) -> list[int]:
    return [int(p.name[5:]) for p in folder.glob("step_*")]


def test_killed_and_resumed_runs_are_bitwise_identical(pair, tmp_path):
    """Each chain: SIGKILL at a random step, SIGKILL during a checkpoint write, SIGKILL at the pass
    change, SIGTERM, then a resume to the end with the command the SIGTERM message gave; the image
    is compared with an uninterrupted run's, byte for byte."""
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": os.getcwd()}
    reference = tmp_path / "reference.png"
    assert subprocess.run([sys.executable, "-m", "jnst", "stylize", *pair, "-o", str(reference), *KILL_ARGS,
                           "--quiet"], env=env, capture_output=True, timeout=300).returncode == 0  # fmt: skip
    assert not Path(f"{reference}.ckpt").exists()  # removed after a successful run
    rng = random.Random(0)
    for trial in range(int(os.environ.get("JNST_KILL_TRIALS", 1))):
        out = tmp_path / f"out{trial}.png"
        kill_chain(["stylize", *pair, "-o", str(out), *KILL_ARGS], Path(f"{out}.ckpt"), env, rng, tmp_path / "log")
        assert out.read_bytes() == reference.read_bytes(), f"trial {trial}"


def kill_chain(argv: list[str], folder: Path, env: dict[str, str], rng: random.Random, log: Path) -> None:
    """Run ``jnst ARGV`` to the end through four interruptions (see the test above)."""
    # 1. SIGKILL at a random step: a random time after the first checkpoint.
    proc = start(argv, env, log)
    wait_for(proc, log, lambda: steps_saved(folder), "a checkpoint")
    time.sleep(rng.uniform(0, 0.3))
    proc.kill()
    proc.wait()
    # 2. SIGKILL during a checkpoint write, made slow by the test seam: the previous one stays.
    before = steps_saved(folder)
    proc = start([*argv, "--resume"], env | {"JNST_TEST_CHECKPOINT_DELAY": "30"}, log)
    partial = lambda: [p for p in folder.glob(".partial_*") if (p / "jnst.json").exists()]  # noqa: E731
    wait_for(proc, log, partial, "a checkpoint being written")
    proc.kill()
    proc.wait()
    assert partial() and steps_saved(folder) == before and before[0] < 16
    # 3. SIGKILL at the pass change: the first pass's last checkpoint has just appeared.
    proc = start([*argv, "--resume"], env, log)
    wait_for(proc, log, lambda: 16 in steps_saved(folder), "the first pass's last checkpoint")
    proc.kill()
    proc.wait()
    # 4. SIGTERM: the image and a checkpoint are written, and the message says how to resume.
    proc = start([*argv, "--resume"], env, log)
    wait_for(proc, log, lambda: 20 in steps_saved(folder), "a checkpoint in the second pass")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == cli.EXIT_INTERRUPTED
    message = log.read_text(errors="replace")
    assert "Traceback" not in message and Path(argv[argv.index("-o") + 1]).exists()
    again = re.search(r"^jnst: checkpoint of step \d+ in .+; resume with: (.+)$", message, re.M)
    assert again, message
    command = shlex.split(again.group(1))
    assert command[0] == "jnst" and command[-1] == "--resume"
    # 5. To the end, keeping the final checkpoint this time.
    done = subprocess.run([sys.executable, "-m", "jnst", *command[1:], "--quiet", "--keep-checkpoint"], env=env,
                          capture_output=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert steps_saved(folder) == [30]
