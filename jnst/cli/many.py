"""``jnst stylize`` with several contents (``-o DIR/``) and/or a ``--sweep``, run as batches."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jnst import compile_cache, images, semantic
from jnst import config as config_lib
from jnst.cli import regions
from jnst.cli.common import (
    EXIT_DIVERGED,
    EXIT_INTERRUPTED,
    Progress,
    UsageError,
    refuse_overwriting_inputs,
    writes,
)
from jnst.cli.parser import SWEEPABLE, OutputFolder, init_file


def stylize_many(args: argparse.Namespace, cfg: config_lib.StyleConfig) -> int:
    """Several contents (``-o DIR/``) and/or a ``--sweep``: photos of one size, times the sweep's
    values, run as one batch (:func:`jnst.stylize.stylize_batch`); each image is written as its
    batch finishes, and a sweep gets a labelled contact sheet per photo."""
    from jnst.loop import DivergedError
    from jnst.schedule import pass_plan
    from jnst.stylize import stylize_batch
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
        "--style-masks": args.style_masks,
        "--style-mask-map": args.style_mask_map,
        "--snapshot-every": args.snapshot_every,
        "--tile": args.tile,
        "--max-memory": args.max_memory,
        "--dry-run": args.dry_run,
        "--resume": args.resume,
        "--checkpoint-every": args.checkpoint_every,
        "--keep-checkpoint": args.keep_checkpoint,
    }
    for flag, given in {**single_only, "--init FILE": init_file(args)}.items():
        if given:
            raise UsageError(f"{flag} works with one content image and no --sweep")
    stems = [p.stem for p in contents]
    if len(set(stems)) != len(stems):
        raise UsageError(f"content images need distinct names in one output folder: {' '.join(map(str, contents))}")
    regions.mask_files(args, len(style_paths), cfg)  # --semantic: the style loss it needs
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
    if args.semantic is not None:  # DIR/photo_regions.png, or OUT_regions.png beside a sweep's images
        sheets += [target(s, None, "regions") if folder else regions.regions_path(args.output) for s in stems]
    refuse_overwriting_inputs([*outputs.values(), *sheets], [*contents, *style_paths])
    for path in [*outputs.values(), *sheets]:
        images.check_writable(path)
    compile_cache.enable()
    model = Model.create(load(args.weights), cfg.pooling)
    loaded = {p: images.load_image(p, args.size) for p in contents}
    groups: dict[tuple[int, int], list[Path]] = {}
    for path, image in loaded.items():  # with --semantic each photo has regions of its own: a batch each
        groups.setdefault(image.shape[:2] if args.semantic is None else path, []).append(path)
    written = 0
    for paths in groups.values():
        hw = loaded[paths[0]].shape[:2]
        styles = [images.load_style(p, hw, args.style_scale) for p in style_paths]
        masks, found = regions.masks_for(args, model, loaded[paths[0]], styles, cfg)
        items = [(p, v) for p in paths for v in values]
        configs = [cfg if v is None else cfg.replace(**{SWEEPABLE[name]: v}) for _, v in items]
        progress = Progress(pass_plan(hw, [s.shape[:2] for s in styles], cfg), args.quiet, lambda *_: None)
        progress.bar.set_postfix_str(f"{len(items)} image{'s' * (len(items) > 1)} at {hw[1]}x{hw[0]}", refresh=False)

        def on_chunk(step: int, terms: list, imgs: list, progress: Progress = progress) -> None:
            progress(step, terms[0], imgs[0])  # the bar shows the first item's loss

        try:
            results = stylize_batch([loaded[p] for p, _ in items], styles, configs, model=model, callback=on_chunk,
                                    shard=args.shard, devices=args.devices, masks=masks)  # fmt: skip
        except KeyboardInterrupt:
            progress.bar.close()
            print(f"jnst: interrupted; {written} of {len(outputs)} images written", file=sys.stderr)
            return EXIT_INTERRUPTED
        except DivergedError as err:
            progress.bar.close()
            print(f"jnst: {err}; {written} of {len(outputs)} images written", file=sys.stderr)
            return EXIT_DIVERGED
        progress.bar.close()
        if not writes():
            continue
        for item, result in zip(items, results, strict=True):
            images.save_image(result.image, outputs[item])
            written += 1
        if found is not None:
            shown = target(paths[0].stem, None, "regions") if folder else regions.regions_path(args.output)
            images.save_image(semantic.regions_image(loaded[paths[0]], styles, found), shown)
        if name:
            for path in paths:
                mine = [(v, r.image) for (p, v), r in zip(items, results, strict=True) if p == path]
                sheet = images.contact_sheet([im for _, im in mine], [f"{name} {v:g}" for v, _ in mine], len(mine))
                images.save_image(sheet, target(path.stem, None, "sweep"))
    where = args.output if folder else args.output.parent
    if writes():
        print(f"wrote {written} image{'s' * (written > 1)}{' and contact sheets' if name else ''} in {where}")
    return 0
