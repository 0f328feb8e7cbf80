"""Peak memory of one ``jnst.stylize`` call, measured in a fresh process.

``ru_maxrss`` and JAX's ``peak_bytes_in_use`` only ever grow within a process, so each size is
measured in its own: ``python -m benchmarks._memory --size 256 --steps 10`` (from the repository
root) prints one JSON line. The peak includes loading the model and compiling, as a user's run
pays them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from benchmarks._common import ROOT, device_peak_mib, load_pair, stylize_config
from benchmarks._system import peak_rss_mib


def measure(size: int, steps: int, optimizer: str, dtype: str) -> dict[str, float | None]:
    """Stylize once in this process; peak RSS before (model and images loaded) and after, in MiB."""
    from jnst import Model, stylize

    content, style = load_pair(size)
    model = Model.create()
    baseline = peak_rss_mib()
    stylize(content, style, stylize_config(optimizer, steps, dtype), model=model)
    return {"peak_rss_mib": peak_rss_mib(), "baseline_rss_mib": baseline, "device_peak_mib": device_peak_mib()}


def measure_in_subprocess(size: int, steps: int, optimizer: str, dtype: str) -> dict[str, float | None]:
    """:func:`measure` in a fresh Python process (the same interpreter), for a clean high-water mark."""
    cmd = [sys.executable, "-m", "benchmarks._memory", f"--size={size}", f"--steps={steps}"]
    cmd += [f"--optimizer={optimizer}", f"--dtype={dtype}"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, required=True, help="long side of the content image")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--dtype", default="float32", help="StyleConfig.compute_dtype")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.size, args.steps, args.optimizer, args.dtype)))


if __name__ == "__main__":
    main()
