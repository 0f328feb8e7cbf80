"""Region quality of :func:`jnst.semantic.regions` against known regions: composites of
``../shared/images`` whose true regions are known, scored over a small grid of SemanticConfig.

  python benchmarks/regions.py [--quick] [--json out/regions.json] [--out out/regions]
  python benchmarks/regions.py --from-json out/regions.json      # the tables again, nothing rerun

Each case is a composite photo and a composite painting, each made of two pictures (centre
cropped to squares, Lanczos) in one layout: side by side (two 128 px squares, 256x128), top and
bottom (128x256), or one pasted as a centre block (128 px) inside the other (256 px, so the
block is a quarter of the picture and has no straight border with the picture's edge: place
alone does not separate it). 256 px is SemanticConfig.side, the size regions are found at. The
photos pair a portrait (astronaut.png) with a landscape (golden_gate.jpg), the paintings
picasso_selfport1907.jpg with shipwreck.jpg, as benchmarks/semantic.py's composites do, in the
paintings' order and swapped (matching by place alone fails one of them), and with the
painting in another layout than the photo; more pairs (tubingen.jpg with coffee.png,
chelsea.png with golden_gate.jpg; starry_night.jpg with the_scream.jpg) for segmentation alone.

Scores, per case and configuration:

- **mIoU** (photo, painting): the found regions made hard (each position to its largest soft
  mask), assigned one to one to the true regions to maximise the mean IoU (a found region
  left over counts for nothing, a true region left over scores 0, so a wrong N costs), on the
  ``layers[0]`` grid (the true regions are on grid borders).
- **soft mIoU**: the same with the soft masks (``sum min / sum max``): how much of a mask's
  weight is on its region; a softer border scores lower.
- **match**: the share of the photo's area whose region takes a painting region lying mostly
  on the expected painting (astronaut -> picasso, golden_gate -> shipwreck).

The features are computed once per image and layer set (``jnst.semantic``'s internals:
:func:`features`, then the descriptor, k-means and soft masks as :func:`segment` builds them);
:func:`check` confirms that this reproduces :func:`regions` exactly for one configuration, and
times :func:`regions` itself (cold: compilation included; warm: again).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import _system  # this script's folder is first on sys.path
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jnst import semantic
from jnst.semantic import AUTO, SemanticConfig, _blur, _scaled, choose_regions, kmeans, match, soft_masks
from jnst.vgg import Model, features

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "images"
SIDE = 256
EXPECTED = {"astronaut.png": "picasso_selfport1907.jpg", "golden_gate.jpg": "shipwreck.jpg"}
# (photo layout, photo A, photo B, painting layout, painting A, painting B); A is left / top / the
# background, B right / bottom / the centre block. Matching is scored where EXPECTED covers both photos.
CASES = [
    ("lr", "astronaut.png", "golden_gate.jpg", "lr", "picasso_selfport1907.jpg", "shipwreck.jpg"),
    ("lr", "golden_gate.jpg", "astronaut.png", "lr", "picasso_selfport1907.jpg", "shipwreck.jpg"),
    ("tb", "astronaut.png", "golden_gate.jpg", "tb", "shipwreck.jpg", "picasso_selfport1907.jpg"),
    ("block", "golden_gate.jpg", "astronaut.png", "block", "shipwreck.jpg", "picasso_selfport1907.jpg"),
    ("block", "astronaut.png", "golden_gate.jpg", "lr", "shipwreck.jpg", "picasso_selfport1907.jpg"),
    ("lr", "golden_gate.jpg", "astronaut.png", "block", "picasso_selfport1907.jpg", "shipwreck.jpg"),
    ("block", "tubingen.jpg", "coffee.png", "tb", "starry_night.jpg", "the_scream.jpg"),
    ("tb", "chelsea.png", "golden_gate.jpg", "block", "the_scream.jpg", "starry_night.jpg"),
]
LAYER_SETS = {
    "b3+b4": ("block3_conv1", "block4_conv1"),
    "b3": ("block3_conv1",),
    "b2+b3+b4": ("block3_conv1", "block2_conv1", "block4_conv1"),
}
MATCH_SETS = {"b4+b5": ("block4_conv1", "block5_conv1"), "b5": ("block5_conv1",)}
GRID = {"color": [0.0, 0.7, 1.5], "position": [0.0, 0.6, 1.2], "blur": [0.0, 3.0, 6.0]}
CENTRE = {"color": 0.7, "position": 0.6, "blur": 3.0}  # the defaults before this measurement
SOFT = [(3.0, 1.5), (1.0, 1.5), (10.0, 0.5)]  # (sharpness, smooth)
NS = [2, "auto@0.08", "auto@0.15", "auto@0.25"]  # n=2, and AUTO with each gain
QUICK = {"color": [0.7], "position": [0.0, 0.6], "blur": [3.0]}


def design(grid: dict, centre: dict) -> list[tuple[float, float, float]]:
    """(colour, position, blur) points: the centre, and each knob's values with the others at
    the centre (one knob at a time: 7 points, not 27)."""
    points = [(centre["color"], centre["position"], centre["blur"])]
    for knob, values in grid.items():
        for v in values:
            point = tuple(v if k == knob else centre[k] for k in ("color", "position", "blur"))
            if point not in points:
                points.append(point)
    return points


def square(name: str, side: int) -> np.ndarray:
    with Image.open(IMAGES / name) as img:
        img = img.convert("RGB")
        s = min(img.size)
        left, top = (img.width - s) // 2, (img.height - s) // 2
        img = img.crop((left, top, left + s, top + s)).resize((side, side), Image.Resampling.LANCZOS)
    return np.asarray(img, np.float32) / 255


def composite(layout: str, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    """The (H, W, 3) picture and its (H, W) truth: 0 where ``a`` is, 1 where ``b`` is."""
    half = SIDE // 2
    if layout == "lr":
        image = np.concatenate([square(a, half), square(b, half)], 1)
        truth = np.repeat([[0] * half + [1] * half], half, 0)
    elif layout == "tb":
        image = np.concatenate([square(a, half), square(b, half)], 0)
        truth = np.repeat([[0] * half + [1] * half], half, 0).T
    else:
        image, truth = square(a, SIDE), np.zeros((SIDE, SIDE), int)
        q = SIDE // 4
        image[q : q + half, q : q + half] = square(b, half)
        truth[q : q + half, q : q + half] = 1
    return image, truth


class Parts:
    """One image's descriptor parts, computed once: each layer's unit-scaled grid, the colour's
    and the place's, blurred per blur value, and each match layer set's deep grid."""

    def __init__(self, model: Model, image: np.ndarray, first: str):
        names = tuple(sorted({*itertools.chain(*LAYER_SETS.values()), *itertools.chain(*MATCH_SETS.values())}))
        acts = features(model.graphdef, model.params, jnp.asarray(image)[None], names, "replicate")
        h, w = acts[first].shape[1:3]
        self.hw = (h, w)

        def grid(x):
            return jax.image.resize(x[0], (h, w, x.shape[-1]), "linear").reshape(h * w, -1)

        ys, xs = jnp.meshgrid(jnp.arange(h) / max(h, w), jnp.arange(w) / max(h, w), indexing="ij")
        self.raw = {n: _scaled(grid(acts[n])) for n in names}
        self.raw["color"] = _scaled(grid(jnp.asarray(image)[None]))
        self.raw["position"] = _scaled(jnp.stack([ys, xs], -1).reshape(h * w, 2))
        self.deep = {n: grid(acts[n]) / jnp.sqrt(jnp.mean(jnp.sum(grid(acts[n]) ** 2, axis=1)) + 1e-12) for n in names}
        self.blurred: dict[tuple[str, float], jax.Array] = {}

    def part(self, name: str, blur: float) -> jax.Array:
        if (name, blur) not in self.blurred:
            self.blurred[name, blur] = _blur(self.raw[name].reshape(*self.hw, -1), blur)
        return self.blurred[name, blur]

    def descriptor(self, layers: tuple[str, ...], color: float, position: float, blur: float) -> jax.Array:
        # The blur is linear and per channel: blurring the parts then weighing them is the same.
        parts = [self.part(n, blur) for n in layers]
        parts += [color * self.part("color", blur), position * self.part("position", blur)]
        return jnp.concatenate(parts, -1)

    def matching(self, match_layers: tuple[str, ...]) -> jax.Array:
        return jnp.concatenate([self.deep[n] for n in match_layers], 1)


def segment(parts: Parts, cfg: SemanticConfig, n: int, key: jax.Array, softs: list[tuple[float, float]]):
    """As :func:`jnst.semantic.segment`, on the grid: per (sharpness, smooth), the (k, h, w) masks."""
    x = parts.descriptor(cfg.layers, cfg.color, cfg.position, cfg.blur)
    flat = x.reshape(-1, x.shape[-1])
    tried = list(range(1, cfg.max_regions + 1)) if n == AUTO else [n]
    found, inertia = kmeans(flat, jnp.asarray(tried), key, max(tried), cfg.iterations, cfg.restarts)
    inertias = [float(j) for j in inertia]
    return {
        gain: [np.asarray(soft_masks(x, found[tried.index(k), :k], s, m)) for s, m in softs]
        for gain, k in ((g, choose_regions(inertias, g) if n == AUTO else n) for g in GAINS)
    }


def miou(masks: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Hard and soft mean IoU of the best one-to-one assignment of found to true regions."""
    k, t = len(masks), int(truth.max()) + 1
    hard = np.eye(k)[masks.argmax(0)].transpose(2, 0, 1)
    true = np.eye(t)[truth].transpose(2, 0, 1)

    def iou(a, b):
        return np.minimum(a, b).sum() / max(np.maximum(a, b).sum(), 1e-12)

    best = []
    for found in (hard, masks):
        table = np.array([[iou(found[i], true[j]) for j in range(t)] for i in range(k)])
        scores = [
            sum(table[i, j] for i, j in zip(perm, range(t), strict=False) if i is not None) / t
            for perm in itertools.permutations([*range(k), *[None] * max(0, t - k)], t)
        ]
        best.append(max(scores))
    return best[0], best[1]


def grid_truth(truth: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    fy, fx = truth.shape[0] // hw[0], truth.shape[1] // hw[1]
    return truth[fy // 2 :: fy, fx // 2 :: fx][: hw[0], : hw[1]]


def match_score(case, photo: np.ndarray, painting: np.ndarray, tp: np.ndarray, ts: np.ndarray, matching) -> float:
    """The share of the photo's area (hard regions) whose region takes a painting region lying
    mostly on the expected painting; nan where the case has no expected pairing."""
    _, pa, pb, _, sa, sb = case
    if pa not in EXPECTED or pb not in EXPECTED:
        return float("nan")
    owner = [np.argmax([painting[k][ts == j].sum() for j in (0, 1)]) for k in range(len(painting))]
    want = np.where(tp == 0, [sa, sb].index(EXPECTED[pa]), [sa, sb].index(EXPECTED[pb]))
    got = np.asarray([owner[matching[r][1]] for r in range(len(photo))])[photo.argmax(0)]
    return float((got == want).mean())


GAINS = [0.08, 0.15, 0.25]


def sweep(model: Model, layer_sets, points, softs, match_sets) -> list[dict]:
    base = SemanticConfig()
    made = []
    for case in CASES:
        photo, tp = composite(*case[:3])
        painting, ts = composite(*case[3:])
        made.append((case, photo, tp, painting, ts))
    rows = []
    for layer_name in layer_sets:
        layers = LAYER_SETS[layer_name]
        feats = [(Parts(model, p, layers[0]), Parts(model, s, layers[0])) for _, p, _, s, _ in made]
        for color, position, blur in points:
            cfg = replace(base, layers=layers, color=color, position=position, blur=blur)
            for n in (2, AUTO):
                per_case = []
                for (case, _, tp, _, ts), (fp, fs) in zip(made, feats, strict=True):
                    keys = jax.random.split(jax.random.key(cfg.seed), 2)
                    sp, ss = segment(fp, cfg, n, keys[0], softs), segment(fs, cfg, n, keys[1], softs)
                    gp, gs = grid_truth(tp, fp.hw), grid_truth(ts, fs.hw)
                    per_case.append((case, sp, ss, gp, gs, fp, fs))
                for gain in [None] if n == 2 else GAINS:
                    for si, (sharp, smooth) in enumerate(softs):
                        for mname in match_sets:
                            rows.append(
                                score_row(per_case, gain, si, MATCH_SETS[mname], dict(
                                    layers=layer_name, color=color, position=position, blur=blur,
                                    sharpness=sharp, smooth=smooth, n="2" if n == 2 else f"auto@{gain}",
                                    match_layers=mname)))  # fmt: skip
            print(f"{layer_name} colour {color} position {position} blur {blur}: {len(rows)} rows", file=sys.stderr)
    return rows


def score_row(per_case, gain, si, match_layers, knobs) -> dict:
    cases = []
    for case, sp, ss, gp, gs, fp, fs in per_case:
        mp, ms = sp[gain if gain else GAINS[0]][si], ss[gain if gain else GAINS[0]][si]
        (hp, softp), (hs, softs_) = miou(mp, gp), miou(ms, gs)
        means = []
        for m, f in ((mp, fp), (ms, fs)):
            flat = m.reshape(len(m), -1)
            means.append(np.asarray(flat @ np.asarray(f.matching(match_layers))) / flat.sum(1, keepdims=True))
        matching, _ = match(means[0], [means[1]], (mp.sum((1, 2)), [ms.sum((1, 2))]))
        cases.append(dict(case="/".join(map(str, case)), k=(len(mp), len(ms)), photo=hp, painting=hs,
                          soft_photo=softp, soft_painting=softs_,
                          match=match_score(case, mp, ms, gp, gs, matching)))  # fmt: skip
    summary = {
        key: statistics.mean(c[key] for c in cases if c[key] == c[key])
        for key in ("photo", "painting", "soft_photo", "soft_painting", "match")
    }
    for layout in ("lr", "tb", "block"):
        summary[f"photo_{layout}"] = statistics.mean(c["photo"] for c in cases if c["case"].startswith(layout))
    summary["score"] = (summary["photo"] + summary["painting"]) / 2 * summary["match"]
    return {**knobs, **summary, "cases": cases}


def check(model: Model, cfg: SemanticConfig) -> dict:
    """:func:`regions` itself on the first case: the same masks as the sweep's pipeline, and its time."""
    case = CASES[0]
    photo, _ = composite(*case[:3])
    painting, _ = composite(*case[3:])
    jax.clear_caches()
    times = []
    for _ in range(3):
        t = time.perf_counter()
        found = semantic.regions(photo, painting, 2, model=model, config=cfg)
        times.append(time.perf_counter() - t)
    fp = Parts(model, photo, cfg.layers[0])
    key = jax.random.split(jax.random.key(cfg.seed), 2)[0]
    ours = segment(fp, cfg, 2, key, [(cfg.sharpness, cfg.smooth)])[GAINS[0]][0]
    theirs = found.content[:, 1::4, 1::4][:, : fp.hw[0], : fp.hw[1]]
    agree = float((ours.argmax(0) == theirs.argmax(0)).mean())
    return {"cold_s": times[0], "warm_s": statistics.median(times[1:]), "argmax_agreement": agree}


def fmt(row: dict, cols) -> str:
    return "| " + " | ".join(f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c]) for c in cols) + " |"


KNOBS = ["layers", "color", "position", "blur", "sharpness", "smooth", "n", "match_layers"]
SCORES = ["photo", "painting", "soft_photo", "soft_painting", "match", "photo_lr", "photo_tb", "photo_block", "score"]


def render(data: dict, top: int = 12) -> str:
    rows = data["rows"]
    m = data["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, JAX {m['jax']} on {m['backend']}; {data['date']}; "
             f"`{data['command']}`; {len(rows)} configurations x {len(CASES)} cases in {data['sweep_s']:.0f} s.",
             "", "| " + " | ".join(KNOBS + SCORES) + " |", "|" + " --- |" * len(KNOBS + SCORES)]  # fmt: skip
    ranked = sorted(rows, key=lambda r: -r["score"])
    default = data.get("default")
    shown = ranked[:top] + [r for r in rows if default and all(r[k] == default[k] for k in KNOBS)]
    for r in shown:
        lines.append(fmt(r, KNOBS + SCORES))
    lines += ["", "Each knob alone (the best score with it fixed, the others free):", "",
              "| knob | value | best score | its photo mIoU | its match |",
              "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for k in KNOBS:
        for v in sorted({r[k] for r in rows}, key=str):
            best = max((r for r in rows if r[k] == v), key=lambda r: r["score"])
            lines.append(f"| {k} | {v} | {best['score']:.3f} | {best['photo']:.2f} | {best['match']:.2f} |")
    if "check" in data:
        c = data["check"]
        lines += ["", f"regions() on a 256x128 composite and a 256x128 painting, n=2: {c['cold_s']:.2f} s cold "
                  f"(compilation included), {c['warm_s']:.2f} s warm; the sweep's pipeline agrees with it on "
                  f"{100 * c['argmax_agreement']:.1f} % of the grid."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few grid points only (a smoke run)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--from-json", type=Path, help="print the tables of an earlier run, nothing rerun")
    p.add_argument("--centre", default="", help="the design's centre, e.g. color=0.7,position=0.6,blur=3")
    p.add_argument("--layers", choices=list(LAYER_SETS), help="one layer set only (default: each)")
    p.add_argument("--top", type=int, default=12, help="rows of the ranked table")
    args = p.parse_args(argv)
    if args.from_json:
        print(render(json.loads(args.from_json.read_text()), args.top))
        return 0
    model = Model.create()
    t = time.perf_counter()
    centre = dict(CENTRE)
    for item in filter(None, args.centre.split(",")):
        k, v = item.split("=")
        centre[k] = float(v)
    points = design(QUICK if args.quick else GRID, centre)
    layer_sets = [args.layers] if args.layers else list(LAYER_SETS)[:1] if args.quick else list(LAYER_SETS)
    softs = SOFT[:1] if args.quick else SOFT
    rows = sweep(model, layer_sets, points, softs, list(MATCH_SETS)[:1] if args.quick else list(MATCH_SETS))
    sweep_s = time.perf_counter() - t
    cfg = SemanticConfig()
    data = {
        "machine": {"cpu": _system.cpu_model(), "cores": _system.cpu_count(), "jax": jax.__version__,
                    "backend": jax.default_backend()},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python benchmarks/regions.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "sweep_s": sweep_s, "rows": rows, "check": check(model, cfg),
        "default": {"layers": next(k for k, v in LAYER_SETS.items() if v == cfg.layers), "color": cfg.color,
                    "position": cfg.position, "blur": cfg.blur, "sharpness": cfg.sharpness, "smooth": cfg.smooth,
                    "n": "2", "match_layers": next(k for k, v in MATCH_SETS.items() if v == cfg.match_layers)},
    }  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1, default=str))
    print(render(data, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
