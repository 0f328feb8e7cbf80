"""The public API: paint a content image in the style of one or more style images.

A short orchestration of the pipeline's modules: the batch's items (:mod:`jnst.batch`), the
passes and their steps (:mod:`jnst.schedule`), the targets of each pass (:mod:`jnst.targets`),
compiled chunks of optimiser steps (:mod:`jnst.loop`) over the objective (:mod:`jnst.objective`),
or, for a picture too big for memory, the same tile by tile (:mod:`jnst.tiled_targets`,
:mod:`jnst.tiled_loop`), where the arrays live (:mod:`jnst.devices`) and the run's checkpoints
(:mod:`jnst.checkpoint`). Each chunk length compiles once per image shape and
:meth:`StyleConfig.compiled_part`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import numpy as np

from jnst import checkpoint, tiled_loop, tiled_objective, tiled_targets, tiles
from jnst.balance import style_scale
from jnst.batch import Batch, first_state, stack, unstack
from jnst.checkpoint import Checkpoints, Position
from jnst.config import StyleConfig
from jnst.devices import Placement, to_host
from jnst.loop import check_finite, run_chunk, segments
from jnst.masks import GuidedMasks
from jnst.objective import Weights
from jnst.schedule import next_pass, pass_plan
from jnst.targets import compute_targets
from jnst.temporal import Temporal
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


def stylize(
    content: np.ndarray | Array,
    style: np.ndarray | Array | Sequence[np.ndarray | Array],
    config: StyleConfig | None = None,
    *,
    masks: np.ndarray | GuidedMasks | None = None,
    init_image: np.ndarray | Array | None = None,
    model: Model | None = None,
    callback: Callable[[int, dict[str, np.ndarray], Array], None] | None = None,
    shard: str = "none",
    devices: int | None = None,
    tile: int = 0,
    checkpoints: Checkpoints | None = None,
    on_tile: Callable[[str, int, int], None] | None = None,
    temporal: Temporal | None = None,
) -> StyleResult:
    """Paint ``content`` in the style of ``style`` (float (H, W, 3) RGB in [0, 1]).

    ``style`` may be a list of style images, blended by ``config.style_blend``; with ``masks``
    (S, H, W) in [0, 1], one per style and the content's size, style s goes where its mask is
    (guided Gram matrices) with the mask value as strength; :class:`jnst.masks.GuidedMasks`
    (:func:`jnst.semantic.regions`' ``.masks``) puts regions on the style images as well.
    ``init_image`` (H, W, 3), the content's size, is the starting image instead of ``config.init``.
    ``model`` defaults to VGG19 with the shipped ImageNet weights and ``config.pooling``; pass
    one to reuse it across calls. ``callback(step, chunk_losses, image)`` runs on the host after each compiled chunk
    (for progress bars and snapshots) with the steps done so far, that chunk's per-step loss
    terms and the current image as the result would show it: (H, W, 3) numpy, full size,
    colours restored. ``shard="space"`` splits the image's height over ``devices`` devices;
    ``tile`` > 0 computes each pass bigger than ``tile`` px tile by tile (see
    :func:`stylize_batch`; ``on_tile(sweep, done, count)`` hears of each tile).
    ``checkpoints`` saves the run's position as it goes, or resumes it
    (:class:`jnst.checkpoint.Checkpoints`). ``temporal`` adds a video frame's temporal loss
    (:mod:`jnst.temporal`, :mod:`jnst.video`).
    """
    on_chunk = None if callback is None else lambda step, terms, images: callback(step, terms[0], images[0])
    inits = None if init_image is None else [init_image]
    (result,) = stylize_batch([content], style, [config or StyleConfig()], masks=masks, init_images=inits,
                              model=model, callback=on_chunk, shard=shard, devices=devices, tile=tile,
                              checkpoints=checkpoints, on_tile=on_tile, temporal=temporal)  # fmt: skip
    return result


def stylize_batch(
    contents: Sequence[np.ndarray | Array],
    style: np.ndarray | Array | Sequence[np.ndarray | Array],
    configs: Sequence[StyleConfig],
    *,
    masks: np.ndarray | GuidedMasks | None = None,
    init_images: Sequence[np.ndarray | Array] | None = None,
    model: Model | None = None,
    callback: Callable[[int, list[dict[str, np.ndarray]], list[np.ndarray]], None] | None = None,
    shard: str = "none",
    devices: int | None = None,
    tile: int = 0,
    checkpoints: Checkpoints | None = None,
    on_tile: Callable[[str, int, int], None] | None = None,
    temporal: Temporal | None = None,
) -> list[StyleResult]:
    """:func:`stylize` for a batch, optimised together as one compiled program (``vmap``).

    Item i paints ``contents[i]`` under ``configs[i]``; a single content or config is shared by
    every item, so one photo with configs that differ in a weight is a sweep, and several
    photos of one size with one config a batch. The configs may differ only in their weights
    and seed (:data:`jnst.batch.PER_ITEM_FIELDS`); contents must share a size. Each result equals the
    one-image run's within float tolerance. ``callback(step, chunk_losses, images)`` gets a list
    per item. ``shard`` spreads the work over ``devices`` devices (all when None): ``"batch"``
    splits the items, ``"space"`` each image's height (see :mod:`jnst.devices`). With ``tile``
    > 0 (one image, no masks), a pass whose side exceeds ``tile`` px computes its targets and
    every step's gradient tile by tile, in a tile's memory (see :mod:`jnst.tiled_objective`),
    the tiles spread over ``devices`` of this process's devices (all when None), and
    ``on_tile(sweep, done, count)`` hears of each finished group of tiles of a step's two halves.
    ``checkpoints`` is told the run's position after every chunk, and gives the position to resume
    from; a resumed run's result is bitwise the uninterrupted one's. A NaN or Inf in the loss or
    the pixels raises :class:`jnst.loop.DivergedError` at the chunk where it appears, before the
    callback or a checkpoint sees it. ``temporal`` (one image, untiled) adds a video frame's
    temporal loss to every pass's targets.
    """
    batch = Batch.of(contents, style, configs, masks, init_images)
    if temporal is not None and (batch.size > 1 or tile):
        raise ValueError("a temporal loss takes one image, untiled")
    config, compiled, n, backend = batch.configs[0], batch.configs[0].compiled_part(), batch.size, jax.default_backend()
    if tile:
        tiles.check_run(tile, config.layers, n, shard, config.style_loss)
    passes = pass_plan(batch.hw, batch.style_hws, config, backend)
    model = Model.create(pooling=config.pooling) if model is None else model
    net = (model.graphdef, model.params)
    coarsest = batch.at(passes[0])  # the pair's balance, measured where every run (resumed too) starts
    weights = stack([Weights.of(c, max(batch.hw), style_scale(model, *item, c))
                     for c, item in zip(batch.configs, coarsest, strict=True)])  # fmt: skip
    placement = Placement.of(shard, devices, bool(tile), n, passes[0].hw[0])
    inputs = {**batch.inputs, "model": [model.params]}
    position = checkpoint.start(checkpoints, batch.configs, inputs, shard=shard, tile=tile)
    history, snapshots, step, state = list(position.history), list(position.snapshots), position.step, None
    for index, p in enumerate(passes[position.pass_index :], position.pass_index):
        tiling = tiles.step_plan(p.hw, tile, config.layers) if tile else None
        tiled, items = tiling is not None and len(tiling.picture) > 1, batch.at(p)
        if state is None and position.state is not None:  # resumed: the state's tree, shapes and dtypes here
            template = jax.eval_shape(lambda cs: first_state(cs, compiled), [c for c, _ in items])
            state = checkpoint.restore_state(position.state, template)
        elif state is None:
            state = first_state(batch.starts(items, p.hw), compiled)
            if config.snapshot_every:
                snapshots.append((0, batch.finish(to_host(state.average))))
        else:
            state = stack([next_pass(s, p.hw, compiled) for s in unstack(state, n)])
        each = list(zip(items, batch.configs, strict=True))
        pass_masks, style_masks = batch.masks_at(p.hw), batch.style_masks_at(p)
        if tiled:
            targets = stack([tiled_targets.compute_targets(*net, c, s, cfg, tile, pass_masks, style_masks)
                             for (c, s), cfg in each])  # fmt: skip
            replicas = tiled_objective.replicate(model.params, targets, placement.tile_devices)
            run = functools.partial(tiled_loop.run_steps, tiling, model.graphdef, replicas, weights, on_tile=on_tile)
        else:
            targets = stack([compute_targets(model, c, s, cfg, pass_masks, style_masks) for (c, s), cfg in each])
            if temporal is not None:
                targets = targets._replace(temporal=temporal.at(p.hw))
            state, targets, weights = placement.put((state, targets, weights))
            run = functools.partial(run_chunk, *net, targets, weights, unroll=backend == "cpu", batched=n > 1,
                                    split=placement.split)  # fmt: skip
        pass_start = sum(q.steps for q in passes[:index])
        chunks = segments(pass_start, p.steps, config.snapshot_every, p.chunk)
        for length in checkpoint.remaining(chunks, pass_start, step):
            if length == 0:
                snapshots.append((step, batch.finish(to_host(state.average))))
                continue
            state, terms = run(state, config=compiled, length=length)
            history.append(terms)
            # One transfer of the pixels a chunk: the finiteness check and the preview share it
            # (a NaN anywhere in the iterates reaches the average too).
            average = to_host(state.average)
            check_finite(step, terms, average)
            step += length
            if callback is not None:
                callback(step, unstack(to_host(terms), n), batch.finish(average))
            if checkpoints is not None:
                checkpoints.reached(Position(step, index, state, list(history), list(snapshots)))
    finals = batch.finish(to_host(state.average))
    if config.snapshot_every and (not snapshots or snapshots[-1][0] != step):
        snapshots.append((step, finals))
    losses, pass_steps = batch.losses(to_host(history)), tuple(q.steps for q in passes)
    return [
        StyleResult(im, losses[i], tuple((s, shot[i]) for s, shot in snapshots), pass_steps)
        for i, im in enumerate(finals)
    ]
