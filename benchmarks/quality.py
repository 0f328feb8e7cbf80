"""Quality against pastiche: each tool's default, end to end, timed and scored by an independent ruler.

  python benchmarks/quality.py --peer-python .peer/bin/python [--sizes 256,512]
        [--pairs held-out|tuning|all|tubingen:starry_night,...] [--out out/quality]
        [--pastiche-steps 300] [--jnst-args "..."] [--extra-preset quality] [--no-pastiche] [--json results.json]
  python benchmarks/quality.py --from-json results.json               # the tables again, nothing rerun
  python benchmarks/quality.py --from-json results.json --rescore     # rerun only the ruler and HF energy
  python benchmarks/quality.py --from-json a.json b.json --rescore --json all.json   # merge runs, score

The pairs are :mod:`pairs`' grid of every photo with every painting, split by its fixed rule into
a tuning half and a held-out half (``--pairs held-out``, the default; ``tuning``; ``all``; or
named pairs); the tables report each half on its own, and the targets are judged on the
held-out half.

For every size and content:style pair, alternating, each in a fresh process timed by wall clock
from process start to the output file written:

- pastiche's defaults (L-BFGS, ``--num-steps`` 300, seed 0, torch's default threads);
- ``jnst stylize ... --size SIZE --quiet`` (its default preset), with ``JAX_COMPILATION_CACHE_DIR``
  set to a fresh empty folder per run: a first run, compilation included;
- optionally ``--preset NAME`` (``--extra-preset``, repeatable), for the gallery.

Outputs go to ``OUT/{size}/{content}__{style}__{system}.png``. After all timed runs,
``peer_ruler.py`` (pastiche's VGG19 in torch) scores every output once, and the
high-frequency energy of outputs and references is measured here (:func:`hf_energy`).
Where one size is twice another, the ruler also measures each system's consistency across
sizes: the content distance between its output at the small size and its output at the large
size, BOX-resized down (the large output stands in for the content image). Markdown tables go to
stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from _system import cpu_count, cpu_flags, cpu_model, vector_flags  # this script's folder is first on sys.path
from pairs import HALVES, half, pairs
from peer_ruler import references
from report import fmt, table

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT.parent / "shared" / "images"
RULER = Path(__file__).resolve().with_name("peer_ruler.py")
DEFAULT_PAIRS = "held-out"
DEFAULT_SIZES = "256,512"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
PASTICHE, JNST = "pastiche", "jnst"
# jnst ÷ pastiche must be at most this on every held-out pair for the default to pass; HF: jnst ÷
# max(content, style). And the median pair's style ratio at most MEDIAN_STYLE.
TARGETS = {"time": 0.30, "content": 0.75, "style": 0.75, "hf": 1.1}
MEDIAN_STYLE = 0.5
LAPLACIAN = "[[0,1,0],[1,-4,1],[0,1,0]]"


def find_image(stem: str, images: Path = IMAGES) -> Path:
    """The one image file in ``images`` named ``stem`` plus an image extension."""
    found = sorted(p for p in images.glob(f"{stem}.*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(found) != 1:
        raise SystemExit(f"{images}: expected one image named {stem}.*, found {[p.name for p in found] or 'none'}")
    return found[0]


def output_path(out: Path, size: int, content: str, style: str, system: str) -> Path:
    """Where a run's image goes: ``out/{size}/{content}__{style}__{system}.png``."""
    return out / str(size) / f"{content}__{style}__{system}.png"


def output_record(path: Path, size: int, images: Path = IMAGES) -> dict[str, object]:
    """A run of an image already written at ``path`` (named by :func:`output_path`), as
    :func:`score` takes it: untimed (``wall_s`` 0), its content and style found in ``images``."""
    content, style, system = parse_output_name(path)
    return {"output": str(path), "size": size, "content": content, "style": style, "system": system,
            "content_path": str(find_image(content, images)), "style_path": str(find_image(style, images)),
            "wall_s": 0.0}  # fmt: skip


def parse_output_name(path: Path) -> tuple[str, str, str]:
    """(content, style, system) from a name written by :func:`output_path`."""
    parts = path.stem.split("__")
    if len(parts) != 3:
        raise ValueError(f"{path.name}: expected CONTENT__STYLE__SYSTEM.png")
    return parts[0], parts[1], parts[2]


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``"a:b,c:d"`` -> ``[("a", "b"), ("c", "d")]``; ``"held-out"``, ``"tuning"`` or ``"all"``: that
    half of :mod:`pairs`' grid (or the whole grid)."""
    if text in (*HALVES, "all"):
        return pairs(text)
    named = [tuple(item.split(":")) for item in text.split(",") if item]
    if not named or any(len(p) != 2 or not all(p) for p in named):
        raise argparse.ArgumentTypeError(f"expected held-out, tuning, all or CONTENT:STYLE[,...], got {text!r}")
    return named  # type: ignore[return-value]


def parse_sizes(text: str) -> list[int]:
    """``"256,512"`` -> ``[256, 512]``, each at least 16."""
    try:
        sizes = [int(s) for s in text.split(",") if s]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 16:
        raise argparse.ArgumentTypeError(f"expected long sides >= 16, comma-separated, got {text!r}")
    return sizes


# ---------------------------------------------------------------------------------------------
# Timed runs


def timed_run(cmd: list[str], output: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run ``cmd`` in a fresh process; seconds from its start to ``output`` written, and to its exit.

    The written time is the file's modification time (the last write of the image), so the
    interpreter's shutdown after saving is not counted; a stale file is removed first.
    """
    output.unlink(missing_ok=True)
    start_ns = time.time_ns()
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    exit_s = time.perf_counter() - start
    record: dict[str, object] = {"cmd": shlex.join(cmd), "returncode": proc.returncode, "exit_s": exit_s}
    if proc.returncode == 0 and output.is_file():
        record["wall_s"] = max(0.0, (output.stat().st_mtime_ns - start_ns) / 1e9)
    else:
        record["error"] = (proc.stderr or proc.stdout or "no output file").strip()[-2000:]
    return record


def pastiche_cmd(peer_python: str, content: Path, style: Path, out: Path, size: int, steps: int) -> list[str]:
    """pastiche with its defaults, only the size, step count and seed set (torch threads: its default)."""
    return [peer_python, "-m", "pastiche", "--content", str(content), "--styles", str(style), "-o", str(out),
            "--size", str(size), "--num-steps", str(steps), "--seed", "0", "--no-verbose"]  # fmt: skip


def jnst_cmd(content: Path, style: Path, out: Path, size: int, preset: str | None, extra: list[str]) -> list[str]:
    """``jnst stylize`` with its default preset (or ``preset``), then the user's extra arguments."""
    cmd = [sys.executable, "-m", "jnst", "stylize", str(content), str(style), "-o", str(out), "--size", str(size)]
    return cmd + (["--preset", preset] if preset else []) + ["--quiet", *extra]


def run_jnst(cmd: list[str], output: Path) -> dict[str, object]:
    """A jnst run with an empty persistent compilation cache of its own: a cold first run."""
    with tempfile.TemporaryDirectory(prefix="jnst-cache-") as cache:
        return timed_run(cmd, output, env={**os.environ, "JAX_COMPILATION_CACHE_DIR": cache})


def warm_page_cache(peer_python: str) -> None:
    """Import each side's libraries once, untimed, so neither timed run pays cold disk reads."""
    for cmd in ([peer_python, "-c", "import torch, pastiche.pastiche"], [sys.executable, "-c", "import jax, jnst.cli"]):
        subprocess.run(cmd, capture_output=True, check=False)


def run_all(args: argparse.Namespace) -> list[dict[str, object]]:
    """Every timed run, pastiche and jnst alternating pair by pair, then any extra presets; with
    ``--rounds N`` each pair's runs repeat N times in turn, and a run's ``wall_s`` is the median
    of its ``wall_runs`` (the VM's speed drifts by 10-25 % within minutes; both tools'
    outputs are deterministic, so the last round's image is every round's)."""
    runs = []
    jnst_extra = shlex.split(args.jnst_args)
    paths = {stem: find_image(stem, args.images) for pair in args.pairs for stem in pair}  # fail before any run
    warm_page_cache(args.peer_python)
    for size in args.sizes:
        for content_stem, style_stem in args.pairs:
            content, style = paths[content_stem], paths[style_stem]
            systems: list[tuple[str, str | None]] = [(PASTICHE, None)] * (not args.no_pastiche) + [(JNST, None)]
            systems += [(f"{JNST}-{preset}", preset) for preset in args.extra_preset]
            outs = {system: output_path(args.out, size, content_stem, style_stem, system) for system, _ in systems}
            rounds: dict[str, list[dict[str, object]]] = {system: [] for system, _ in systems}
            for _ in range(args.rounds):
                for system, preset in systems:
                    out = outs[system]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    if system == PASTICHE:
                        cmd = pastiche_cmd(args.peer_python, content, style, out, size, args.pastiche_steps)
                        record = timed_run(cmd, out)
                    else:
                        record = run_jnst(jnst_cmd(content, style, out, size, preset, jnst_extra), out)
                    rounds[system].append(record)
                    status = f"{record['wall_s']:.1f} s" if "wall_s" in record else f"FAILED: {record['error'][-300:]}"
                    print(f"{size} {content_stem}:{style_stem} {system}: {status}", file=sys.stderr, flush=True)
            for system, _ in systems:
                done = rounds[system]
                failed = [r for r in done if "wall_s" not in r]
                walls = [r["wall_s"] for r in done if "wall_s" in r]
                record = failed[0] if failed else {**done[-1], "wall_s": statistics.median(walls), "wall_runs": walls}
                record.update(size=size, content=content_stem, style=style_stem, system=system,
                              half=half(content_stem, style_stem),
                              output=str(outs[system]), content_path=str(content), style_path=str(style))  # fmt: skip
                runs.append(record)
    return runs


# ---------------------------------------------------------------------------------------------
# Scoring


def hf_energy(rgb: np.ndarray) -> float:
    """Mean over pixels and channels of the squared 3×3 Laplacian of uint8 RGB as floats in [0, 1].

    Valid region only (no padding). High where the image has fine detail or noise: a pastiche
    full of speckle scores above both its content and its style.
    """
    x = np.asarray(rgb, dtype=np.float64) / 255.0
    lap = x[:-2, 1:-1] + x[2:, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:] - 4.0 * x[1:-1, 1:-1]
    return float(np.mean(lap**2))


def ruler(peer_python: str, runs: list[dict[str, object]]) -> dict[str, object]:
    """Run ``peer_ruler.py`` once over every run's output (or ready-made jobs); its answer (facts,
    and results in run order)."""
    jobs = [
        r if "wall_s" not in r else {"output": r["output"], "content": r["content_path"], "style": r["style_path"]}
        for r in runs
    ]
    proc = subprocess.run(
        [peer_python, str(RULER)], input=json.dumps(jobs), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"peer_ruler.py failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def consistency_jobs(runs: list[dict[str, object]]) -> list[dict[str, object]]:
    """One ruler job per system, pair and size that has an output at twice that size too: the
    small output scored against the large one (which the ruler BOX-resizes to the small size)."""
    done = {(r["system"], r["content"], r["style"], r["size"]): r for r in runs if "wall_s" in r}
    jobs = []
    for (system, content, style, size), small in done.items():
        large = done.get((system, content, style, 2 * size))
        if large is not None:
            jobs.append({"output": small["output"], "content": large["output"], "style": small["style_path"],
                         "system": system, "pair": f"{content} × {style}", "sizes": [size, 2 * size]})  # fmt: skip
    return jobs


def score(peer_python: str, runs: list[dict[str, object]]) -> dict[str, object]:
    """Add the ruler's errors and the HF energies to each successful run (in place); the ruler's facts,
    with ``consistency``: the content distance between each system's outputs at a size and twice it."""
    done = [r for r in runs if "wall_s" in r]
    answer = ruler(peer_python, done + consistency_jobs(runs)) if done else {"results": []}
    answer["consistency"] = answer["results"][len(done) :]
    answer["results"] = answer["results"][: len(done)]
    for run, result in zip(done, answer.pop("results"), strict=True):
        for key in ("hw", "style_hw", "content_error", "style_error", "style_errors", "error"):
            run.pop(f"ruler_{key}" if key == "error" else key, None)  # a rescore replaces every old score
            if key in result:
                run[f"ruler_{key}" if key == "error" else key] = result[key]
        run.pop("hf", None)
        if "error" in result:
            continue
        out, content, style = references(run["output"], run["content_path"], run["style_path"])
        run["hf"] = {"output": hf_energy(out), "content": hf_energy(content), "style": hf_energy(style)}
    return answer


# ---------------------------------------------------------------------------------------------
# Machine facts


def version(package: str) -> str | None:
    """An installed distribution's version in this environment, without importing it."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, object]:
    """CPU, thread-related environment and jnst-side versions: where the numbers come from."""
    return {
        "cpu_model": cpu_model(),
        "cpu_count": cpu_count(),
        "cpu_flags": cpu_flags(),
        "jax": version("jax"),
        "jaxlib": version("jaxlib"),
        "jnst": version("jnst"),
        "python": sys.version.split()[0],
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS") if k in os.environ},
    }


# ---------------------------------------------------------------------------------------------
# Report


def num(value: float | None) -> str:
    """An error or energy to 3 significant digits, scientific where large or small; "n/a" if missing."""
    return "n/a" if value is None else f"{value:.3g}"


def ratio(top: float | None, bottom: float | None) -> float | None:
    """``top / bottom``, or None when either is missing or the bottom is zero."""
    return top / bottom if top is not None and bottom else None


def verdict(value: float | None, target: float) -> str:
    """The pass/fail cell: "pass" when ``value`` is at most ``target``, "**fail**" above, "n/a" if None."""
    return "n/a" if value is None else ("pass" if value <= target else "**fail**")


def hw(run: dict[str, object] | None) -> str:
    """The output's (h × w) as the ruler read it."""
    return "×".join(map(str, run["hw"])) if run and "hw" in run else "?"


def pair_rows(data: dict, size: int) -> list[tuple[str, dict | None, str, dict | None]]:
    """(pair label, pastiche run, jnst system, jnst run) per pair and jnst system at ``size``."""
    runs = [r for r in data["runs"] if r["size"] == size]
    rows = []
    for pair in dict.fromkeys((r["content"], r["style"]) for r in runs):
        mine = {r["system"]: r for r in runs if (r["content"], r["style"]) == pair}
        label = f"{pair[0]} × {pair[1]}"
        rows += [(label, mine.get(PASTICHE), system, run) for system, run in mine.items() if system != PASTICHE]
    return rows


def ratios(peer: dict | None, run: dict | None) -> dict[str, float | None]:
    """jnst ÷ pastiche for time, content and style error; jnst HF ÷ max(content HF, style HF)."""
    peer, run = peer or {}, run or {}
    hf = run.get("hf")
    return {
        "time": ratio(run.get("wall_s"), peer.get("wall_s")),
        "content": ratio(run.get("content_error"), peer.get("content_error")),
        "style": ratio(run.get("style_error"), peer.get("style_error")),
        "hf": ratio(hf["output"], max(hf["content"], hf["style"])) if hf else None,
    }


def layers_lower(peer: dict, run: dict) -> str:
    """In how many style layers jnst's Gram error is below pastiche's: the plain mean hides all but the largest."""
    if "style_errors" not in peer or "style_errors" not in run:
        return "n/a"
    mine, theirs = run["style_errors"], peer["style_errors"]
    return f"{sum(mine[k] < theirs[k] for k in theirs)} of {len(theirs)}"


def error_table(data: dict, size: int) -> str:
    """Time and the ruler's errors, pastiche against each jnst run, with pass/fail columns."""
    head = ["pair", "jnst run", "h×w pastiche / jnst", "pastiche s", "jnst s", "time ÷", f"≤ {TARGETS['time']}",
            "content err pastiche", "content err jnst", "content ÷", f"≤ {TARGETS['content']}",
            "style err pastiche", "style err jnst", "style ÷", f"≤ {TARGETS['style']}",
            "style layers jnst lower"]  # fmt: skip
    rows = []
    for label, peer, system, run in pair_rows(data, size):
        r, p, j = ratios(peer, run), peer or {}, run or {}
        rows.append([label, system, f"{hw(peer)} / {hw(run)}", fmt(p.get("wall_s")), fmt(j.get("wall_s")),
                     fmt(r["time"]), verdict(r["time"], TARGETS["time"]),
                     num(p.get("content_error")), num(j.get("content_error")), fmt(r["content"]),
                     verdict(r["content"], TARGETS["content"]),
                     num(p.get("style_error")), num(j.get("style_error")), fmt(r["style"]),
                     verdict(r["style"], TARGETS["style"]), layers_lower(p, j)])  # fmt: skip
    return table(head, rows)


def hf_table(data: dict, size: int) -> str:
    """High-frequency energy of each output and of the two references it is scored against."""
    head = ["pair", "jnst run", "HF pastiche", "HF jnst", "HF content", "HF style", "jnst ÷ max(content, style)",
            f"≤ {TARGETS['hf']}"]  # fmt: skip
    rows = []
    for label, peer, system, run in pair_rows(data, size):
        hf, peer_hf = (run or {}).get("hf", {}), (peer or {}).get("hf", {})
        r = ratios(peer, run)["hf"]
        rows.append([label, system, num(peer_hf.get("output")), num(hf.get("output")), num(hf.get("content")),
                     num(hf.get("style")), fmt(r), verdict(r, TARGETS["hf"])])  # fmt: skip
    return table(head, rows)


def summary(data: dict, size: int) -> str:
    """The default's worst ratio of each kind at ``size``, and whether it meets its target."""
    rows = [(label, ratios(peer, run)) for label, peer, system, run in pair_rows(data, size) if system == JNST]
    parts = []
    for kind, target in TARGETS.items():
        known = [(r[kind], label) for label, r in rows if r[kind] is not None]
        if len(known) < len(rows) or not known:
            parts.append(f"{kind} n/a for {len(rows) - len(known)} of {len(rows)} pairs")
            continue
        worst, label = max(known)
        parts.append(f"{kind} {fmt(worst)} ({label}) {verdict(worst, target)}")
    styles = [r["style"] for _, r in rows if r["style"] is not None]
    if styles:
        median = statistics.median(styles)
        parts.append(f"median pair's style {fmt(median)} {verdict(median, MEDIAN_STYLE)} (≤ {MEDIAN_STYLE})")
    return f"**Worst jnst default ÷ pastiche at {size}:** " + "; ".join(parts) + "."


def header(data: dict) -> str:
    """One line on the machine and versions, one on the run's settings."""
    m, peer = data["machine"], data.get("peer", {})
    flags = vector_flags(name for name, present in m["cpu_flags"].items() if present)
    env = "; " + ", ".join(f"{k}={v}" for k, v in m["env"].items()) if m.get("env") else ""
    return (
        f"Machine: {m['cpu_model']}, {m['cpu_count']} cores ({flags}); jax {m['jax']} (jnst {m['jnst']}); "
        f"torch {peer.get('torch', '?')} ({peer.get('threads', '?')} threads), pastiche {peer.get('pastiche', '?')}; "
        f"{data['date']}{env}\n\n"
        f"Settings: pastiche `--num-steps {data['settings']['pastiche_steps']} --seed 0`, its other defaults; "
        f"jnst default preset, extra arguments `{data['settings']['jnst_args'] or '(none)'}`"
        + (f"; extra presets {', '.join(data['settings']['extra_preset'])}" if data["settings"]["extra_preset"] else "")
        + (
            f"; {rounds} rounds, each tool in turn, times are medians"
            if (rounds := data["settings"].get("rounds", 1)) > 1
            else ""
        )
    )


NOTES = [
    "Times: wall clock of a fresh process, from its start to the output file written (the file's mtime). "
    "jnst's is a FIRST run: an empty `JAX_COMPILATION_CACHE_DIR` per run, so XLA compilation is included; "
    "pastiche compiles nothing. Each side's libraries were imported once, untimed, before the first run "
    "(warm OS page cache for both).",
    "Errors: pastiche's VGG19 in torch (`peer_ruler.py`), Caffe preprocessing; content = MSE of `block4_relu2` "
    "activations against the content BOX-resized to the output's size; style = mean over `block1_relu1`…"
    "`block5_relu1` of the MSE between Gram matrices F Fᵀ/(h·w), the style BOX-resized to the output's pixel count. "
    "Lower is better; ÷ is jnst ÷ pastiche. Style layers jnst lower: in how many of the five layers jnst's Gram "
    "error is the lower one (the mean is dominated by the layer with the largest Gram entries).",
    f"HF: mean squared 3×3 Laplacian {LAPLACIAN} (valid region) of the image in [0, 1]; content and style as the "
    "ruler resizes them. jnst ÷ max(content, style) above 1 means more fine detail or noise than either input.",
    "Targets apply to the jnst default (`jnst` rows) on the held-out half (benchmarks/pairs.py: photo and "
    "painting numbered in name order, an even sum is held-out); other presets are shown for reference.",
]


def consistency_table(data: dict) -> str:
    """Content distance between each system's outputs at a size and at twice it (lower: more alike)."""
    rows = [
        [c["pair"], c["system"], " vs ".join(map(str, c["sizes"])), num(c.get("content_error"))]
        for c in data.get("peer", {}).get("consistency", [])
    ]
    return table(["pair", "system", "sizes (px)", "content distance (block4_relu2 MSE)"], rows) if rows else ""


def halves(data: dict) -> list[tuple[str, dict]]:
    """(title, data with only that half's runs) for each half of :mod:`pairs` with runs, then the
    runs of pairs outside its grid."""
    split = [(f"{h} half", [r for r in data["runs"] if half(r["content"], r["style"]) == h]) for h in HALVES]
    split.append(("other pairs", [r for r in data["runs"] if half(r["content"], r["style"]) is None]))
    return [(title, {**data, "runs": runs}) for title, runs in split if runs]


def render(data: dict) -> str:
    """The markdown report: header, then per size and half of the pairs the error table, the HF
    table and the summary; then consistency across sizes, where measured."""
    parts = [header(data)]
    for size in sorted({r["size"] for r in data["runs"]}):
        for title, part in halves(data):
            if any(r["size"] == size for r in part["runs"]):
                parts += [f"### {size} px (long side), {title}", error_table(part, size), hf_table(part, size),
                          summary(part, size)]  # fmt: skip
    if consistency_table(data):
        parts += ["### Across sizes: the small output against the large one, BOX-resized down", consistency_table(data)]
    failed = [r for r in data["runs"] if "wall_s" not in r or "ruler_error" in r]
    for r in failed:
        parts.append(f"- FAILED {r['size']} {r['content']}:{r['style']} {r['system']}: "
                     f"{(r.get('error') or r.get('ruler_error'))[-300:]!r}")  # fmt: skip
    parts.append("\n".join(f"- {n}" for n in NOTES))
    return "\n\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-python", default=os.environ.get("JNST_PEER_PYTHON"),
                        help="Python with torch + pastiche (default: $JNST_PEER_PYTHON)")  # fmt: skip
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes(DEFAULT_SIZES), help="long sides")
    parser.add_argument("--pairs", type=parse_pairs, default=parse_pairs(DEFAULT_PAIRS),
                        help="held-out (default), tuning, all (benchmarks/pairs.py) or CONTENT:STYLE,...")  # fmt: skip
    parser.add_argument("--images", type=Path, default=IMAGES, help="folder of the content and style images")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "quality", help="output images go here")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each tool a pair, in turn; times: medians")
    parser.add_argument("--pastiche-steps", type=int, default=300, help="pastiche --num-steps")
    parser.add_argument("--jnst-args", default="", help='extra `jnst stylize` arguments, e.g. "--steps 5"')
    parser.add_argument("--extra-preset", action="append", default=[], help="also run jnst --preset NAME")
    parser.add_argument("--no-pastiche", action="store_true",
                        help="rerun jnst only (merge with an earlier run's pastiche: --from-json OLD NEW)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write everything (settings, machine, runs, scores) here")
    parser.add_argument("--from-json", type=Path, nargs="+",
                        help="print the tables of earlier --json files (their runs merged), run nothing")  # fmt: skip
    parser.add_argument("--rescore", action="store_true",
                        help="with --from-json: rerun the ruler and HF on its outputs; saved to --json, "
                             "else back into the --from-json file")  # fmt: skip
    args = parser.parse_args(argv)
    args.out, args.images = args.out.resolve(), args.images.resolve()  # the JSON's paths work from anywhere
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.rescore and not args.from_json:
        parser.error("--rescore needs --from-json")
    if not args.from_json and not args.peer_python:
        parser.error("--peer-python (or $JNST_PEER_PYTHON) is needed to run pastiche and the ruler")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        parts = [json.loads(path.read_text()) for path in args.from_json]
        data = {**parts[0], "runs": [run for part in parts for run in part["runs"]]}
        if len(parts) > 1:
            data["settings"] = {**data["settings"], "sizes": sorted({r["size"] for r in data["runs"]})}
            data["peer"] = {**data.get("peer", {}), "consistency": []}
        if args.rescore:
            data["peer"] = score(args.peer_python or data["settings"]["peer_python"], data["runs"])
            (args.json or args.from_json[0]).write_text(json.dumps(data, indent=1))
        print(render(data))
        return 0
    settings = {
        "sizes": args.sizes, "pairs": args.pairs, "rounds": args.rounds, "pastiche_steps": args.pastiche_steps,
        "jnst_args": args.jnst_args,
        "extra_preset": args.extra_preset, "peer_python": args.peer_python, "out": str(args.out),
    }  # fmt: skip
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    runs = run_all(args)
    data = {"date": date, "settings": settings, "machine": machine(), "runs": runs}
    if args.json:  # the timed runs are kept even if scoring fails; --rescore can finish the job
        args.json.write_text(json.dumps(data, indent=1))
    data["peer"] = score(args.peer_python, runs)
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))
    print(render(data))
    return 0 if all("wall_s" in r and "ruler_error" not in r for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
