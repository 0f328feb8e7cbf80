"""jnst against pastiche (PyTorch), side by side: same images, layers, size, optimiser, device.

The peer runs as a long-lived subprocess of ``--peer-python`` (``peer_pastiche.py --serve``), so
torch starts once and the rounds truly alternate: pastiche, jnst, pastiche, jnst, ... (the peer
round is ``benchmark.pedantic``'s untimed ``setup``). Each side's median seconds per step over
its rounds and the speed ratio go into extra_info. Like pastiche's ``draw()``, a jnst round times
optimiser steps only: the compiled chunks that :func:`jnst.stylize` runs, with the targets
computed once beforehand (as pastiche does in its constructor).
"""

from __future__ import annotations

import statistics

import jax
import pytest

from benchmarks._common import CONTENT, STYLE, env_info, step_timer, stylize_config
from benchmarks._peer import PEER_DEVICES, PEER_OPTIMIZERS, PeerProcess, peer_args


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
    args = peer_args(config, size, device, CONTENT, STYLE, peer_threads)
    jnst_times: list[float] = []
    peer_answers: list[dict] = []
    timer = step_timer(model, content, style, config)

    with PeerProcess(peer_python, args) as peer:
        timer(steps)  # compile outside timing: the very programs the timed rounds run
        rounds_of = lambda: jnst_times.append(timer(steps))  # noqa: E731
        benchmark.pedantic(rounds_of, setup=lambda: peer_answers.append(peer.run(steps)), rounds=rounds)

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
