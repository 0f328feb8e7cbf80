"""Sharding over devices gives the one-device result: 4 CPU devices in a subprocess (XLA_FLAGS
must be set before JAX starts), compared with the plain run in the same process."""

import importlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jnst import StyleConfig
from jnst.devices import check_split, make_mesh
from jnst.stylize import stylize_batch

ROOT = Path(__file__).resolve().parents[1]

# Runs in a fresh process with 4 CPU devices; prints the largest pixel differences as JSON.
SCRIPT = """
import json, sys
import jax, jax.numpy as jnp
import numpy as np
from jnst import StyleConfig
from jnst.devices import make_mesh, place
from jnst.images import load_image, load_style
from jnst.objective import Weights, objective
from jnst.stylize import stylize_batch
from jnst.targets import compute_targets
from jnst.vgg import Model

images = sys.argv[1]
content = load_image(f"{images}/tubingen.jpg", 96)
other = np.ascontiguousarray(content[:, ::-1])
style = load_style(f"{images}/starry_night.jpg", content.shape[:2])
config = StyleConfig(steps=6, chunk_size=3, scale_start=0, optimizer="adam")
model = Model.create()
plain = stylize_batch([content, other, content, other], style, [config], model=model)
batch = stylize_batch([content, other, content, other], style, [config], model=model, shard="batch")
# Space: the objective's value and gradient on a height-split image against one device's, away
# from the content start (there the content term's gradient is rounding noise, see losses.py).
targets = compute_targets(model, jnp.asarray(content)[None], [jnp.asarray(style)[None]], config)
image = 0.8 * jnp.asarray(content)[None] + 0.1
grad = jax.jit(jax.value_and_grad(objective, has_aux=True), static_argnums=(1, 5))
args = (model.graphdef, model.params)
(v1, _), g1 = grad(image, *args, targets, Weights.of(config), config.compiled_part())
split_image, split_targets = place((image, targets), make_mesh(), "space")
(v4, _), g4 = grad(split_image, *args, split_targets, Weights.of(config), config.compiled_part())
one = stylize_batch([content], style, [config.replace(steps=1)], model=model)[0].image
space = stylize_batch([content], style, [config.replace(steps=1)], model=model, shard="space")[0].image
print(json.dumps({
    "devices": len(jax.devices()),
    "split": str(split_image.sharding.spec),
    "batch": max(float(np.abs(a.image - b.image).max()) for a, b in zip(plain, batch)),
    "value": abs(float(v4 - v1)) / abs(float(v1)),
    "grad": float(jnp.linalg.norm(g4 - g1) / jnp.linalg.norm(g1)),
    "space_mean": float(np.abs(space - one).mean()),
}))
"""


def test_batch_and_space_sharding_match_one_device(shared_images):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(shared_images)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.splitlines()[-1])
    assert found["devices"] == 4 and "devices" in found["split"], found
    assert found["batch"] <= 2 / 255, found  # a batch split over the devices: the same pictures
    # One image split along its height: the same loss and gradient (halo exchange, all-reduced
    # Gram sums), and after a step the same picture (Adam's first step is the gradient's sign, so
    # pixels whose gradient is ~0 may flip: compared on average).
    assert found["value"] < 1e-6, found["value"]
    assert found["grad"] < 1e-5, found["grad"]
    assert found["space_mean"] < 1e-4, found["space_mean"]


def test_sharding_errors():
    with pytest.raises(ValueError, match="devices asked for, 1 visible"):
        make_mesh(2)
    mesh = make_mesh(1)
    with pytest.raises(ValueError, match="shard must be one of"):
        check_split("rows", mesh, 1, 64)
    check_split("batch", mesh, 3, 64)  # one device takes any batch


def test_batch_that_does_not_divide_is_refused(model, small_pair, monkeypatch):
    content, style = small_pair
    monkeypatch.setattr(importlib.import_module("jnst.devices"), "make_mesh", lambda count: _FakeMesh(2))
    with pytest.raises(ValueError, match="a batch of 3 does not split over 2 devices"):
        stylize_batch([content] * 3, style, [StyleConfig(steps=2)], model=model, shard="batch")
    with pytest.raises(ValueError, match="too low to split over 2 devices"):
        check_split("space", _FakeMesh(2), 1, 24)


class _FakeMesh:
    """Stands in for a mesh of ``size`` devices where only one exists (the checks read its size)."""

    def __init__(self, size: int):
        self.size = size


# Compiles one default step (L-BFGS) at 1024x768 for one device and height-split over 4, and
# prints each program's memory from XLA's analysis (arguments + outputs + temporaries).
MEMORY_SCRIPT = """
import json
import jax.numpy as jnp
import numpy as np
from jnst import StyleConfig
from jnst.devices import height_split, make_mesh, place
from jnst.loop import LoopState, run_chunk
from jnst.objective import Weights
from jnst.targets import compute_targets
from jnst.vgg import Model

config = StyleConfig().compiled_part()
model = Model.create()
image = jnp.asarray(np.random.default_rng(0).random((1, 768, 1024, 3), np.float32))
targets = compute_targets(model, image, [image], config)
state = LoopState.start(image, config)

def memory(split):
    args = (targets, Weights.of(config), state)
    if split is not None:
        args = place(args, make_mesh(), "space")
    compiled = run_chunk.lower(model.graphdef, model.params, *args, config=config, length=1, unroll=True, split=split)
    m = compiled.compile().memory_analysis()
    return m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes

print(json.dumps({"one": memory(None), "four": memory(height_split(make_mesh()))}))
"""


def test_space_sharding_divides_memory_of_a_1024px_step():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.splitlines()[-1])
    # 4 devices: each holds a quarter of every activation; VGG19's weights stay whole on each.
    assert found["four"] <= 0.4 * found["one"], found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_on_localhost_give_the_one_process_result(shared_images, tmp_path):
    # Two hosts of two CPU devices each (gloo between them) form one 4-device mesh: the picture
    # is the one a single process with 4 devices makes, and only process 0 writes it. Average
    # pooling: gloo sums the shards in another order, and a max pooling's gradient jumps where a
    # window's two largest values are a rounding apart (max: 11 values off by 2-3/255 on an
    # AVX-512 EPYC and 3/255 on an AMX Xeon; average: bitwise equal on the EPYC). The border is
    # replicated for the same reason: with the default zero border 129 values were off by 1/255
    # and one by 2/255 (AVX2 EPYC); replicated, bitwise equal there.
    def command(out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "jnst", "stylize", str(shared_images / "tubingen.jpg"),
                str(shared_images / "starry_night.jpg"), "-o", str(out), "--size", "96", "--steps", "6", "--optimizer",
                "adam", "--scales", "none", "--shard", "space", "--pooling", "avg", "--padding", "replicate",
                "--quiet", *extra]  # fmt: skip

    def env(devices: int) -> dict[str, str]:
        return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}

    one = subprocess.run(command(tmp_path / "one.png"), env=env(4), cwd=ROOT, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-3000:]
    cluster = ["--coordinator", f"127.0.0.1:{_free_port()}", "--num-processes", "2", "--process-id"]
    procs = [
        subprocess.Popen(
            command(tmp_path / f"two_{i}.png", *cluster, str(i)),
            env=env(2),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    assert not (tmp_path / "two_1.png").exists()
    two, ref = (np.asarray(Image.open(tmp_path / name), np.int16) for name in ("two_0.png", "one.png"))
    assert np.abs(two - ref).max() <= 1
