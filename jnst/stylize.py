"""The public API: paint a content image in the style of one or more style images.

A short orchestration of the pipeline's modules: the passes and their steps (:mod:`jnst.schedule`),
the targets of each pass (:mod:`jnst.targets`), compiled chunks of optimiser steps
(:mod:`jnst.loop`) over the objective (:mod:`jnst.objective`), and the images the user sees.
Each chunk length compiles once per image shape and :meth:`StyleConfig.compiled_part`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jnst import checkpoint, color, images, tiled_loop, tiled_objective, tiled_targets, tiles
from jnst.checkpoint import Checkpoints, Position
from jnst.config import StyleConfig
from jnst.devices import check_split, height_split, local_devices, make_mesh, place, to_host
from jnst.loop import LoopState, check_finite, run_chunk, segments
from jnst.objective import Weights
from jnst.schedule import check_sizes, next_pass, pass_plan, resize, scaled
from jnst.targets import compute_targets
from jnst.vgg import Model

Array = jax.Array


@dataclass(frozen=True)
class StyleResult:
    """Output of :func:`stylize`.

    Attributes:
      image: the stylized image, float32 (H, W, 3) RGB in [0, 1].
      losses: per-step ``total``, ``content``, ``style`` and ``tv`` terms (weighted), each
        float32 (steps,), evaluated at the image each step started from.
      snapshots: ``(step, image)`` pairs every ``config.snapshot_every`` steps (step 0 is the
        initial image), ending with the final image.
      pass_steps: the steps run in each pass, coarse to fine (they sum to ``config.total_steps``).
    """

    image: np.ndarray
    losses: dict[str, np.ndarray]
    snapshots: tuple[tuple[int, np.ndarray], ...] = ()
    pass_steps: tuple[int, ...] = ()


def initial_image(content: Array, config: StyleConfig, key: Array) -> Array:
    """The starting pixels: the content image, uniform noise, or content plus noise (clipped)."""
    if config.init == "content":
        return content
    noise = jax.random.uniform(key, content.shape, content.dtype)
    if config.init == "noise":
        return noise
    return jnp.clip(content + config.init_noise * (2.0 * noise - 1.0), 0.0, 1.0)


def _as_batch(image: np.ndarray | Array, what: str) -> Array:
    image = jnp.asarray(image, jnp.float32)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{what} image must be (H, W, 3) RGB, got shape {image.shape}")
    return image[None]


def _prepare_colors(content: Array, styles: list[Array], mode: str) -> tuple[Array, list[Array]]:
    """Inputs as the optimisation sees them under the colour-preservation ``mode``."""
    if mode == "luminance":
        c = np.asarray(content[0])
        return jnp.asarray(color.luminance_image(c))[None], [
            jnp.asarray(color.match_luminance(np.asarray(s[0]), c))[None] for s in styles
        ]
    if mode == "match":
        c = np.asarray(content[0])
        return content, [jnp.asarray(color.match_colors(np.asarray(s[0]), c))[None] for s in styles]
    return content, styles


# What the items of a batch may differ in: their weights (arguments of the compiled step) and seed.
PER_ITEM_FIELDS = ("content_weight", "style_weight", "tv_weight", "content_layers", "style_layers", "seed")


def stylize(
    content: np.ndarray | Array,
    style: np.ndarray | Array | Sequence[np.ndarray | Array],
    config: StyleConfig | None = None,
    *,
    masks: np.ndarray | None = None,
    init_image: np.ndarray | Array | None = None,
    model: Model | None = None,
    callback: Callable[[int, dict[str, np.ndarray], Array], None] | None = None,
    shard: str = "none",
    devices: int | None = None,
    tile: int = 0,
    checkpoints: Checkpoints | None = None,
    on_tile: Callable[[str, int, int], None] | None = None,
) -> StyleResult:
    """Paint ``content`` in the style of ``style`` (float (H, W, 3) RGB in [0, 1]).

    ``style`` may be a list of style images, blended by ``config.style_blend``; with ``masks``
    (S, H, W) in [0, 1], one per style and the content's size, style s goes where its mask is
    (guided Gram matrices) with the mask value as strength. ``init_image`` (H, W, 3), the
    content's size, is the starting image instead of ``config.init``. ``model`` defaults to
    VGG19 with the shipped ImageNet weights and ``config.pooling``; pass one to reuse it across
    calls. ``callback(step, chunk_losses, image)`` runs on the host after each compiled chunk
    (for progress bars and snapshots) with the steps done so far, that chunk's per-step loss
    terms and the current image as the result would show it: (H, W, 3) numpy, full size,
    colours restored. ``shard="space"`` splits the image's height over ``devices`` devices;
    ``tile`` > 0 computes each pass bigger than ``tile`` px tile by tile (see
    :func:`stylize_batch`; ``on_tile(sweep, done, count)`` hears of each tile).
    ``checkpoints`` saves the run's position as it goes, or resumes it
    (:class:`jnst.checkpoint.Checkpoints`).
    """
    on_chunk = None if callback is None else lambda step, terms, images: callback(step, terms[0], images[0])
    inits = None if init_image is None else [init_image]
    (result,) = stylize_batch([content], style, [config or StyleConfig()], masks=masks, init_images=inits,
                              model=model, callback=on_chunk, shard=shard, devices=devices, tile=tile,
                              checkpoints=checkpoints, on_tile=on_tile)  # fmt: skip
    return result


def stylize_batch(
    contents: Sequence[np.ndarray | Array],
    style: np.ndarray | Array | Sequence[np.ndarray | Array],
    configs: Sequence[StyleConfig],
    *,
    masks: np.ndarray | None = None,
    init_images: Sequence[np.ndarray | Array] | None = None,
    model: Model | None = None,
    callback: Callable[[int, list[dict[str, np.ndarray]], list[np.ndarray]], None] | None = None,
    shard: str = "none",
    devices: int | None = None,
    tile: int = 0,
    checkpoints: Checkpoints | None = None,
    on_tile: Callable[[str, int, int], None] | None = None,
) -> list[StyleResult]:
    """:func:`stylize` for a batch, optimised together as one compiled program (``vmap``).

    Item i paints ``contents[i]`` under ``configs[i]``; a single content or config is shared by
    every item, so one photo with configs that differ in a weight is a sweep, and several
    photos of one size with one config a batch. The configs may differ only in their weights
    and seed (``PER_ITEM_FIELDS``); contents must share a size. Each result equals the
    one-image run's within float tolerance. ``callback(step, chunk_losses, images)`` gets a list
    per item. ``shard`` spreads the work over ``devices`` devices (all when None): ``"batch"``
    splits the items, ``"space"`` each image's height (see :mod:`jnst.devices`). With ``tile``
    > 0 (one image, no masks), a pass whose side exceeds ``tile`` px computes its targets and
    every step's gradient tile by tile, in a tile's memory (see :mod:`jnst.tiled_objective`), the tiles
    spread over ``devices`` of this process's devices (all when None), and ``on_tile(sweep,
    done, count)`` hears of each finished group of tiles of a step's two halves.
    ``checkpoints`` is told the run's position after every chunk, and gives the position to resume
    from; a resumed run's result is bitwise the uninterrupted one's. A NaN or Inf in the loss or
    the pixels raises :class:`jnst.loop.DivergedError` at the chunk where it appears, before the
    callback or a checkpoint sees it.
    """
    n = max(len(contents), len(configs))
    if len(contents) not in (1, n) or len(configs) not in (1, n):
        raise ValueError(f"{len(contents)} contents and {len(configs)} configs: give one of either, or as many")
    configs = list(configs) * (n // len(configs))
    contents_b = [_as_batch(c, "content") for c in contents] * (n // len(contents))
    config = configs[0]

    def shared(c: StyleConfig) -> tuple[StyleConfig, StyleConfig]:
        """What items must agree on: the compiled program (layer names included) and the host loop."""
        return c.compiled_part(), c.replace(**{f: getattr(StyleConfig(), f) for f in PER_ITEM_FIELDS})

    if any(shared(c) != shared(config) for c in configs[1:]):
        raise ValueError(f"a batch's configs may differ only in {', '.join(PER_ITEM_FIELDS)} (not layer names)")
    if tile:
        tiles.check_tile(tile, config.layers)
        if n > 1 or shard != "none" or masks is not None:
            raise ValueError("tiles work on one image, without masks or --shard (they spread over the devices)")
    full_hw = tuple(contents_b[0].shape[1:3])
    if any(tuple(c.shape[1:3]) != full_hw for c in contents_b):
        raise ValueError(f"a batch's contents must share one size; got {sorted({c.shape[1:3] for c in contents_b})}")
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    styles_b = [_as_batch(s, "style") for s in styles]
    if masks is not None:
        masks = np.asarray(masks, np.float32)
        if masks.shape != (len(styles), *full_hw):
            raise ValueError(f"masks must be (styles, H, W) = {(len(styles), *full_hw)}, got {masks.shape}")
    inits = None
    if init_images is not None:
        inits = [_as_batch(im, "init") for im in init_images] * (n // len(init_images))
        if any(im.shape[1:3] != full_hw for im in inits):
            raise ValueError(f"init image must be the content's size {full_hw}, got {inits[0].shape[1:3]}")
    check_sizes(full_hw, [s.shape[1:3] for s in styles_b], config)
    model = Model.create(pooling=config.pooling) if model is None else model
    compiled = config.compiled_part()
    weights = _stack([Weights.of(c, max(full_hw)) for c in configs])
    backend = jax.default_backend()
    work = [_prepare_colors(c, styles_b, config.color) for c in contents_b]

    def finish(average: np.ndarray) -> list[np.ndarray]:
        """Each item's image as the user sees it, from the host copy of ``state.average``: full
        size (resized on the host, so a coarse pass compiles no resize of its own), colours
        restored."""
        outs = []
        for i, image in enumerate(_unstack(average, n)):
            out = images.resize(image[0], full_hw)
            if config.color == "luminance":
                out = color.restore_chroma(out, np.asarray(contents_b[i][0]))
            outs.append(out)
        return outs

    passes = pass_plan(full_hw, [s.shape[1:3] for s in styles_b], config, backend)
    pass_steps = tuple(p.steps for p in passes)
    mesh = None if shard == "none" else make_mesh(devices)
    tile_devices = local_devices(devices) if tile else []
    if mesh is not None:
        check_split(shard, mesh, n, passes[0].hw[0])
    split = height_split(mesh) if shard == "space" else None
    position = Position(0, 0, None)
    if checkpoints is not None:
        inputs = {"content": contents_b, "style": styles_b, "init": inits or [], "masks": [masks]}
        found = checkpoint.fingerprint(configs, {**inputs, "model": [model.params]}, shard=shard, tile=tile)
        position = checkpoints.begin(found) or position
    history, snapshots = list(position.history), list(position.snapshots)
    step, state = position.step, None
    for index, (side, hw, steps, chunk) in enumerate((p.side, p.hw, p.steps, p.chunk) for p in passes):
        if index < position.pass_index:
            continue
        factor = side / max(full_hw)
        pass_masks = None if masks is None else np.asarray(resize(jnp.asarray(masks)[..., None], hw)[..., 0])
        tiling = tiles.step_plan(hw, tile, config.layers) if tile else None
        tiled = tiling is not None and len(tiling.picture) > 1
        items = []
        for (content, item_styles), item_config in zip(work, configs, strict=True):
            pass_content = resize(content, hw)
            pass_styles = [resize(s, scaled(s.shape[1:3], factor)) for s in item_styles]
            if tiled:
                net = (model.graphdef, model.params)
                pass_targets = tiled_targets.compute_targets(*net, pass_content, pass_styles, item_config, tile)
            else:
                pass_targets = compute_targets(model, pass_content, pass_styles, item_config, pass_masks)
            items.append((pass_content, pass_targets))
        targets = _stack([t for _, t in items])
        if state is None and position.state is not None:
            # The state's tree, shapes and dtypes at this pass (abstract: nothing is computed).
            start = lambda cs: _stack([LoopState.start(c, compiled) for c in cs])  # noqa: E731
            template = jax.eval_shape(start, [c for c, _ in items])
            state = checkpoint.restore_state(position.state, template)
        elif state is None:
            starts = [
                initial_image(c, cfg, jax.random.key(cfg.seed)) if inits is None else resize(inits[i], hw)
                for i, ((c, _), cfg) in enumerate(zip(items, configs, strict=True))
            ]
            state = _stack([LoopState.start(image, compiled) for image in starts])
            if config.snapshot_every:
                snapshots.append((0, finish(to_host(state.average))))
        else:
            state = _stack([next_pass(s, hw, compiled) for s in _unstack(state, n)])
        if mesh is not None:
            state, targets, weights = place((state, targets, weights), mesh, shard)
        if tiled:
            replicas = tiled_objective.replicate(model.params, targets, tile_devices)
        pass_start = sum(pass_steps[:index])
        chunks = segments(pass_start, steps, config.snapshot_every, chunk)
        for length in checkpoint.remaining(chunks, pass_start, step):
            if length == 0:
                snapshots.append((step, finish(to_host(state.average))))
                continue
            if tiled:
                state, terms = tiled_loop.run_steps(tiling, model.graphdef, replicas, weights, state,
                                                    config=compiled, length=length, on_tile=on_tile)  # fmt: skip
            else:
                state, terms = run_chunk(
                    model.graphdef, model.params, targets, weights, state,
                    config=compiled, length=length, unroll=backend == "cpu", batched=n > 1, split=split,
                )  # fmt: skip
            history.append(terms)
            # One transfer of the pixels a chunk: the finiteness check and the preview share it
            # (a NaN anywhere in the iterates reaches the average too).
            average = to_host(state.average)
            check_finite(step, terms, average)
            step += length
            if callback is not None:
                callback(step, _unstack(to_host(terms), n), finish(average))
            if checkpoints is not None:
                checkpoints.reached(Position(step, index, state, list(history), list(snapshots)))
    per_item_terms = [_unstack(h, n) for h in to_host(history)]
    finals = finish(to_host(state.average))
    results = []
    for i in range(n):
        losses_out = {k: np.concatenate([np.asarray(h[i][k]) for h in per_item_terms]) for k in history[0]}
        shots = [(s, images[i]) for s, images in snapshots]
        if config.snapshot_every and (not shots or shots[-1][0] != step):
            shots.append((step, finals[i]))
        results.append(StyleResult(finals[i], losses_out, tuple(shots), pass_steps))
    return results


def _stack(trees: list):
    """One tree from a batch's per-item trees: the item itself for a batch of one (no batch axis,
    so a single image runs the plain, unmapped program), else leaves stacked on a new axis 0."""
    return trees[0] if len(trees) == 1 else jax.tree.map(lambda *x: jnp.stack(x), *trees)


def _unstack(tree, n: int) -> list:
    """The per-item trees of a :func:`_stack`ed batch of ``n``."""
    return [tree] if n == 1 else [jax.tree.map(lambda x, i=i: x[i], tree) for i in range(n)]
