"""jnst against pastiche (PyTorch), side by side: same images, layers, size, optimiser, device.

The peer runs as a long-lived subprocess of ``--peer-python`` (``peer_pastiche.py --serve``), so
torch starts once and the rounds truly alternate: pastiche, jnst, pastiche, jnst, ... (the peer
round is ``benchmark.pedantic``'s untimed ``setup``). Each side's median seconds per step over
its rounds and the speed ratio go into extra_info. Like pastiche's ``draw()``, a jnst round times
optimiser steps only: the compiled chunks that :func:`jnst.stylize` runs, with the targets
computed once beforehand (as pastiche does in its constructor).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import jax
import pytest

from benchmarks._common import CONTENT, STYLE, chunk_size, env_info, stylize_config
from jnst.loop import LoopState, run_chunk
from jnst.objective import Weights
from jnst.targets import compute_targets

PEER_SCRIPT = Path(__file__).with_name("peer_pastiche.py")
PEER_OPTIMIZERS = ("adam", "lbfgs")
PEER_DEVICES = {"cpu": "cpu", "gpu": "cuda"}


def pastiche_layer(name: str) -> str:
    """pastiche's name for a jnst layer: jnst ``blockN_convM`` (post-ReLU) is ``blockN_reluM``."""
    return name.replace("_conv", "_relu")


class PeerProcess:
    """``peer_pastiche.py --serve`` under the peer Python: send "run N", read one JSON line back."""

    def __init__(self, python: str, args: list[str]):
        self._stderr = tempfile.TemporaryFile(mode="w+")
        cmd = [python, str(PEER_SCRIPT), "--serve", *args]
        pipe = subprocess.PIPE
        self._proc = subprocess.Popen(cmd, stdin=pipe, stdout=pipe, stderr=self._stderr, text=True)
        self.ready = self._answer()

    def _answer(self) -> dict:
        line = self._proc.stdout.readline()
        if not line:
            self._stderr.seek(0)
            raise RuntimeError(f"pastiche peer exited ({self._proc.wait()}):\n{self._stderr.read()[-3000:]}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"pastiche peer: {answer['error']}")
        return answer

    def run(self, steps: int) -> dict:
        self._proc.stdin.write(f"run {steps}\n")
        self._proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        try:
            self._proc.stdin.write("quit\n")
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()

    def __enter__(self) -> PeerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.mark.benchmark(group="jnst-vs-pastiche")
def test_jnst_vs_pastiche(benchmark, model, pair, size, optimizer, steps, rounds, peer_python, peer_threads):
    """Alternating rounds of ``steps`` steps each; jnst's are the benchmark, pastiche's extra_info."""
    if optimizer not in PEER_OPTIMIZERS:
        pytest.skip(f"pastiche has no {optimizer!r} optimiser")
    device = PEER_DEVICES.get(jax.default_backend())
    if device is None:
        pytest.skip(f"no PyTorch device comparable with JAX's {jax.default_backend()} backend")
    content, style = pair
    config = stylize_config(optimizer, steps)
    layers = [
        "--content-layers",
        *(pastiche_layer(n) for n, _ in config.content_layers),
        "--style-layers",
        *(pastiche_layer(n) for n, _ in config.style_layers),
    ]
    args = [f"--size={size}", f"--optimizer={optimizer}", f"--device={device}", f"--content={CONTENT}"]
    args += [f"--style={STYLE}", f"--threads={peer_threads}", *layers]
    jnst_times: list[float] = []
    peer_answers: list[dict] = []

    compiled, weights = config.compiled_part(), Weights.of(config)
    image, style_b = jax.numpy.asarray(content)[None], jax.numpy.asarray(style)[None]
    targets = compute_targets(model, image, [style_b], config)
    chunk = chunk_size(content.shape[:2])
    cpu = jax.default_backend() == "cpu"

    def jnst_round() -> None:
        state = LoopState.start(image, compiled)
        start = time.perf_counter()
        for _ in range(steps // chunk):
            state, _ = run_chunk(
                model.graphdef, model.params, targets, weights, state, config=compiled, length=chunk, unroll=cpu
            )
        jax.block_until_ready(state)
        jnst_times.append((time.perf_counter() - start) / steps)

    with PeerProcess(peer_python, args) as peer:
        jnst_round()  # compile outside timing: the very programs the timed rounds run
        jnst_times.clear()
        benchmark.pedantic(jnst_round, setup=lambda: peer_answers.append(peer.run(steps)), rounds=rounds)

    jnst_s = statistics.median(jnst_times)
    peer_s = statistics.median(a["sec_per_step"] for a in peer_answers)
    last = peer_answers[-1]
    benchmark.extra_info.update(
        kind="peer",
        size=list(content.shape[:2]),
        optimizer=optimizer,
        steps=steps,
        rounds=rounds,
        jnst_s_per_step=jnst_s,
        pastiche_s_per_step=peer_s,
        speed_ratio=peer_s / jnst_s,  # jnst steps/s over pastiche steps/s
        jnst_rounds=jnst_times,
        pastiche_rounds=[a["sec_per_step"] for a in peer_answers],
        pastiche_size=last["size"],
        pastiche_style_size=last["style_size"],
        pastiche_peak_rss_mib=last["peak_rss_mib"],
        pastiche_device_peak_mib=last["device_peak_mib"],
        pastiche_device=last["device"],
        torch=last["torch"],
        torch_threads=last["threads"],
        **env_info(),
    )
    shapes = [list(content.shape[:2]), list(style.shape[:2])]
    if [last["size"], last["style_size"]] != shapes:
        pytest.fail(f"image sizes differ: jnst {shapes}, pastiche {[last['size'], last['style_size']]}")
