"""The subcommands: ``stylize`` (which hands over to the one- or many-image run), ``video``, ``convert``,
``samples``, ``presets``, ``layers`` and ``serve``."""

from __future__ import annotations

import argparse
import os
import shutil

from jnst import compile_cache, images, presets
from jnst.cli.common import UsageError, join_cluster
from jnst.cli.many import stylize_many
from jnst.cli.parser import OutputFolder, style_config
from jnst.cli.single import stylize_one
from jnst.vgg import LAYERS


def _stylize(args: argparse.Namespace) -> int:
    """Join the cluster (before anything else uses JAX), build the config, then run one image,
    or several contents and/or a sweep."""
    join_cluster(args)
    cfg = style_config(args)
    if args.tile:
        from jnst.tiles import check_tile

        check_tile(args.tile, cfg.layers)  # before anything long
    if args.output is None:
        if not args.dry_run or args.sweep:
            raise UsageError("-o/--output is required (only a --dry-run of one picture runs without one)")
    elif args.more_styles and args.output.is_dir():
        args.output = OutputFolder(args.output)
    if isinstance(args.output, OutputFolder) or args.sweep:
        return stylize_many(args, cfg)
    return stylize_one(args, cfg)


def _video(args: argparse.Namespace) -> int:
    from jnst.cli.video import run_video

    return run_video(args)


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
    "video": _video,
    "convert": _convert,
    "samples": _samples,
    "presets": _presets,
    "layers": _layers,
    "serve": _serve,
}
