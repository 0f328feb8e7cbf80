"""``jnst stylize`` with one content image: snapshots, checkpoints, Ctrl-C and divergence."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import time

from jnst import compile_cache, images
from jnst import config as config_lib
from jnst.cli import regions
from jnst.cli.common import (
    EXIT_DIVERGED,
    EXIT_INTERRUPTED,
    Progress,
    UsageError,
    checkpoints_for,
    refuse_overwriting_inputs,
    writes,
)
from jnst.cli.memory_policy import memory_plan
from jnst.cli.parser import init_file


def stylize_one(args: argparse.Namespace, cfg: config_lib.StyleConfig) -> int:
    """Paint ``args.content`` with ``cfg``: every input is checked before the model loads, the
    memory planned before the optimisation; the image (and checkpoint) reached so far survive
    Ctrl-C and divergence."""
    from jnst import plot
    from jnst.loop import DivergedError
    from jnst.schedule import pass_plan
    from jnst.stylize import stylize
    from jnst.vgg import Model
    from jnst.weights import load

    style_paths = list(args.style) + list(args.more_styles)
    if not style_paths:
        raise UsageError("give at least one style image")
    if args.style_blend and len(args.style_blend) != len(style_paths):
        raise UsageError(f"--style-blend has {len(args.style_blend)} weights for {len(style_paths)} style images")
    mask_paths = regions.mask_files(args, len(style_paths), cfg)
    init_path = init_file(args)
    for path in [args.content, *style_paths, *mask_paths]:
        images.check_image(path)
    if init_path is not None:
        try:
            images.check_image(init_path)
        except images.ImageError as err:
            raise UsageError(f"--init {err} (give {', '.join(config_lib.INITS)} or an image file)") from None
    inputs = [args.content, *style_paths, *mask_paths, *([init_path] if init_path else [])]
    if args.output is not None:  # a --dry-run may have none
        outputs = [args.output, *([regions.regions_path(args.output)] if args.semantic is not None else [])]
        refuse_overwriting_inputs(outputs, inputs)
        for path in outputs:
            images.check_writable(path)
    compile_cache.enable()
    checkpoints = checkpoints_for(args) if args.output is not None else None
    model = Model.create(load(args.weights), cfg.pooling)
    content = images.load_image(args.content, args.size)
    init_image = None if init_path is None else images.load_image(init_path, size=content.shape[:2])
    styles = [images.load_style(p, content.shape[:2], args.style_scale) for p in style_paths]
    masks, found = regions.masks_for(args, model, content, styles, cfg)
    passes = pass_plan(content.shape[:2], [s.shape[:2] for s in styles], cfg)
    tile = memory_plan(args, model, cfg, passes)
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
        if snapshot_dir is None or not writes():
            return
        # latest.png follows every chunk: a first look within seconds, from the first coarse pass.
        images.save_image(image, snapshot_dir / "latest.png")
        if step % cfg.snapshot_every == 0:
            images.save_image(image, snapshot_dir / f"step_{step:05d}.png")

    progress = Progress(passes, args.quiet, on_step)
    start = time.perf_counter()
    try:
        with contextlib.nullcontext() if checkpoints is None else checkpoints.signals():
            result = stylize(content, styles, cfg, masks=masks, model=model, callback=progress, init_image=init_image,
                             shard=args.shard, devices=args.devices, tile=tile, checkpoints=checkpoints,
                             on_tile=progress.tile)  # fmt: skip
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
    if not writes():
        return 0
    images.save_image(result.image, args.output)
    if found is not None:
        print(f"regions in {regions.write_regions(args.output, content, styles, found)}")
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
