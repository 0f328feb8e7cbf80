"""``jnst video IN STYLE... -o OUT``: a clip stylized frame by frame (:mod:`jnst.video`).

Each finished frame is written at once as a PNG (atomically) into the run's frame folder: OUT
itself for a folder output, ``OUT.frames/`` beside a video file, which is encoded from them when
the last frame is done. Ctrl-C, SIGTERM or SIGKILL lose at most the frame being made; ``--resume``
checks the frames written (they must read back at the run's size, made with the same settings)
and continues after the last one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from jnst import images, video_io
from jnst.cli import regions
from jnst.cli.common import EXIT_INTERRUPTED, UsageError, refuse_overwriting_inputs
from jnst.cli.parser import (
    add_look,
    add_optimisation,
    add_regions,
    output_path,
    positive_float,
    positive_int,
    style_config,
)
from jnst.config import DTYPES

RECORD = ".jnst-video.json"  # the run's settings and first-frame loss, in its frame folder


def add_video(sub) -> None:
    """The ``video`` command's flags: the stills' look and optimisation, and the clip's own."""
    from jnst import flow
    from jnst.video import VideoConfig

    v = sub.add_parser(
        "video",
        help="paint every frame of a clip in the style of STYLE, without flicker (needs jnst[video])",
        description="Paint a clip frame by frame: the first as `jnst stylize` does, each later one from the "
        "previous output moved along the optical flow, kept there by a temporal loss. Flags left out keep the "
        "--preset's values; --steps counts the first frame's steps.",
    )
    inputs = v.add_argument_group("inputs")
    inputs.add_argument("input", type=Path, metavar="IN", help="video file (mp4, mov, webm, ...) or folder of frames")
    inputs.add_argument("style", type=Path, nargs="+", metavar="STYLE", help="style image(s) (paintings)")
    add_regions(inputs)
    inputs.add_argument("--fps", type=positive_float, metavar="N", help="frame rate of a folder of frames (24)")
    inputs.add_argument("--weights", type=Path, metavar="FILE", help="a jnst weights file (see `jnst convert`)")
    add_look(v)
    add_optimisation(v)
    clip = v.add_argument_group("video")
    clip.add_argument("--frame-steps", type=positive_int, default=VideoConfig.frame_steps, metavar="N",
                      help=f"steps for each frame after the first (default {VideoConfig.frame_steps})")  # fmt: skip
    clip.add_argument("--temporal-weight", type=positive_float, default=VideoConfig.temporal_weight, metavar="W",
                      help="how strongly a frame keeps the previous output where the flow is reliable (default "
                      f"{VideoConfig.temporal_weight:g}, relative to the first frame's loss)")  # fmt: skip
    clip.add_argument("--long-term", type=positive_int, default=VideoConfig.long_term, metavar="K",
                      help="earlier outputs the temporal loss keeps (default 1: the previous one)")  # fmt: skip
    clip.add_argument("--flow", choices=flow.METHODS, default=VideoConfig.flow, help="optical flow (default dis)")
    clip.add_argument("--dtype", choices=DTYPES, help="VGG19's activations: bfloat16 is faster on GPUs and TPUs only")
    out = v.add_argument_group("output")
    out.add_argument("-o", "--output", type=output_path, required=True, metavar="FILE|DIR/",
                     help="video file (.mp4, .mov, .mkv, .webm, .gif, .webp) or folder/ of PNG frames")  # fmt: skip
    out.add_argument("--size", type=positive_int, default=512, metavar="PX", help="frames' long side (default 512)")
    out.add_argument("--resume", action="store_true", help="continue an interrupted run after its last frame")
    out.add_argument("--keep-frames", action="store_true", help="keep OUT.frames/ after encoding a video file")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    v.set_defaults(snapshot_every=None, init=None, more_styles=[], tile=0)


def _settings(args: argparse.Namespace, cfg, video, hw: tuple[int, int], frames: int) -> dict[str, object]:
    """What makes a run's frames what they are: a resumed run must match it."""
    return {"input": str(args.input.resolve()), "styles": [str(p.resolve()) for p in args.style], "hw": list(hw),
            "frames": frames, "config": repr(cfg), "video": repr(video),
            "masks": [str(p.resolve()) for p in regions.mask_files(args, len(args.style), cfg)],
            "semantic": args.semantic}  # fmt: skip


def _write_record(folder: Path, record: dict[str, object]) -> None:
    temp = folder / (RECORD + ".tmp")
    temp.write_text(json.dumps(record, indent=1))
    os.replace(temp, folder / RECORD)


def _frames_done(folder: Path, hw: tuple[int, int], count: int) -> list[np.ndarray]:
    """The frames already written that read back whole at ``hw``, in order, up to the first that
    does not (it and the later ones are made again)."""
    done = []
    for t in range(count):
        path = video_io.frame_path(folder, t)
        try:
            frame = images.load_image(path)
        except images.ImageError:
            break
        if frame.shape[:2] != tuple(hw):
            break
        done.append(frame)
    return done


def _prepare(args: argparse.Namespace, folder: Path, settings: dict[str, object]) -> dict[str, object]:
    """The run's record: new (refusing a folder that holds an earlier run's frames), or the
    interrupted run's with ``--resume`` (refusing other settings)."""
    path = folder / RECORD
    if args.resume:
        if not path.is_file():
            raise UsageError(f"no interrupted run to resume in {folder}")
        record = json.loads(path.read_text())
        changed = [k for k, v in settings.items() if record.get(k) != v]
        if changed:
            raise UsageError(f"{folder} holds a run made with other settings ({', '.join(changed)}): "
                             "give the same command, or delete it to start over")  # fmt: skip
        return record
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} holds files of an earlier run: add --resume to continue it, or delete it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{folder}: cannot create the frame folder ({err.strerror})") from None
    _write_record(folder, settings)
    return dict(settings)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run as Ctrl-C does."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_video(args: argparse.Namespace) -> int:
    """Check every input, read the clip, then make the frames that are not done yet and encode."""
    from tqdm import tqdm

    from jnst import compile_cache
    from jnst.schedule import pass_plan
    from jnst.vgg import Model
    from jnst.video import VideoConfig, frame_config, stylize_video
    from jnst.weights import load

    cfg = style_config(args)
    video = VideoConfig(args.frame_steps, args.temporal_weight, args.long_term, args.flow)
    kind = video_io.kind(args.output)
    mask_paths = regions.mask_files(args, len(args.style), cfg)
    for path in [*args.style, *mask_paths]:
        images.check_image(path)
    refuse_overwriting_inputs([args.output], [args.input, *args.style, *mask_paths])
    if kind != "folder":
        video_io.check_writable(args.output)
    clip = video_io.read(args.input, args.size, even=kind == "encoded", fps=args.fps)
    hw, count = clip.frames.shape[1:3], len(clip.frames)
    folder = args.output if kind == "folder" else args.output.with_name(args.output.name + ".frames")
    record = _prepare(args, folder, _settings(args, cfg, video, hw, count))
    # Frame 0's loss scales the temporal weight: without it in the record, frame 0 is made again.
    done = _frames_done(folder, hw, count) if args.resume and "loss_scale" in record else []
    compile_cache.enable()
    model = Model.create(load(args.weights), cfg.pooling)
    styles = [images.load_style(p, hw, args.style_scale) for p in args.style]
    content = clip.frames[0].astype(np.float32) / 255.0
    masks, found = regions.masks_for(args, model, content, styles, cfg)
    if found is not None:
        print(f"regions of the first frame in {regions.write_regions(args.output, content, styles, found)}")
    first = sum(p.steps for p in pass_plan(hw, [s.shape[:2] for s in styles], cfg))
    later = sum(p.steps for p in pass_plan(hw, [s.shape[:2] for s in styles], frame_config(cfg, video)))
    bar = tqdm(total=count, initial=len(done), unit="frame", disable=args.quiet, dynamic_ncols=True,
               bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{rate_fmt}, {remaining} left]",
               )  # fmt: skip

    def on_chunk(t: int, step: int, terms: dict) -> None:
        bar.set_description_str(f"frame {t + 1}/{count} · step {step}/{first if t == 0 else later}"
                                f" · loss {float(terms['total'][-1]):.4g}")  # fmt: skip

    start, made = time.perf_counter(), len(done)
    try:
        with _terminate_as_interrupt():
            frames = stylize_video(clip.frames, styles, cfg, video, masks=masks, model=model, done=done,
                                   loss_scale=record.get("loss_scale"), callback=on_chunk)  # fmt: skip
            for frame in frames:
                images.save_image(frame.image, video_io.frame_path(folder, frame.index))
                if frame.index == 0:
                    record["loss_scale"] = frame.loss_scale
                    _write_record(folder, record)
                made = frame.index + 1
                bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        again = shlex.join(["jnst", *args.argv, *([] if args.resume else ["--resume"])])
        print(f"jnst: interrupted at frame {made + 1} of {count}; {made} frames done in {folder}; "
              f"resume with: {again}", file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    bar.close()
    seconds = time.perf_counter() - start
    if kind == "folder":
        (folder / RECORD).unlink()
        print(f"wrote {count} frames ({hw[1]}x{hw[0]}) to {folder} in {seconds:.1f} s")
        return 0
    written = (images.to_uint8(images.load_image(video_io.frame_path(folder, t))) for t in range(count))
    video_io.write(args.output, written, clip.fps, audio_from=clip.source if clip.audio else None)
    if not args.keep_frames:
        shutil.rmtree(folder)
    audio = "" if not clip.audio else (", audio kept" if kind == "encoded" else ", no audio (GIF/WebP have none)")
    fps = f"{float(clip.fps):.3g} fps"
    print(f"wrote {args.output} ({count} frames, {hw[1]}x{hw[0]} at {fps}{audio}) in {seconds:.1f} s")
    return 0
