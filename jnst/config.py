"""Style-transfer settings as a frozen (hashable) dataclass, and named presets."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from jnst.vgg import check_layers

INITS = ("content", "noise", "content+noise")
OPTIMIZERS = ("adam",)
POOLINGS = ("max", "avg")
SEED_STYLE_LAYERS = tuple(
    (name, 0.2) for name in ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
)


@dataclass(frozen=True)
class StyleConfig:
    """What :func:`jnst.stylize` optimises and how.

    Layer names are Keras's (``blockN_convM`` is the post-ReLU activation, see :mod:`jnst.vgg`).
    The objective is ``content_weight * sum_l w_l content_loss_l + style_weight *
    sum_l w_l gram_loss_l + tv_weight * total_variation_loss`` over pixels in [0, 1] (see
    :mod:`jnst.losses` for each term's normalisation).

    Attributes:
      steps: optimiser steps (value-and-gradient evaluations).
      content_layers: ``(layer, weight)`` pairs for the content loss.
      style_layers: ``(layer, weight)`` pairs for the Gram-matrix style loss.
      content_weight: alpha, the content term's weight.
      style_weight: beta, the style term's weight.
      tv_weight: weight of the total-variation smoothness term (0 disables it).
      optimizer: ``"adam"``.
      learning_rate, b1, b2, eps: Adam's hyper-parameters, in units of pixels in [0, 1].
      init: start from ``"content"``, ``"noise"`` (uniform in [0, 1]) or ``"content+noise"``.
      init_noise: amplitude of the uniform noise added by ``"content+noise"``.
      seed: PRNG seed for the noise; a run is deterministic for a given seed.
      pooling: ``"max"`` or ``"avg"`` pooling inside VGG19.
      snapshot_every: keep the image every this many steps (0: no snapshots).
      chunk_size: steps per compiled call (0: the backend's default, see :mod:`jnst.stylize`).
    """

    steps: int = 500
    content_layers: tuple[tuple[str, float], ...] = (("block5_conv4", 1.0),)
    style_layers: tuple[tuple[str, float], ...] = SEED_STYLE_LAYERS
    content_weight: float = 1e4
    style_weight: float = 1e-2
    tv_weight: float = 0.0
    optimizer: str = "adam"
    learning_rate: float = 0.05
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    init: str = "content"
    init_noise: float = 0.1
    seed: int = 0
    pooling: str = "max"
    snapshot_every: int = 0
    chunk_size: int = 0

    def __post_init__(self) -> None:
        def fail(msg: str) -> None:
            raise ValueError(msg)

        if not isinstance(self.steps, int) or self.steps < 1:
            fail(f"steps must be a positive integer, got {self.steps!r}")
        if self.snapshot_every < 0 or self.chunk_size < 0:
            fail("snapshot_every and chunk_size must be >= 0")
        for kind, pairs in (("content", self.content_layers), ("style", self.style_layers)):
            check_layers(name for name, _ in pairs)
            if any(not math.isfinite(w) or w < 0 for _, w in pairs):
                fail(f"{kind} layer weights must be finite and >= 0")
        if not self.content_layers and not self.style_layers:
            fail("at least one content or style layer is needed")
        for name in ("content_weight", "style_weight", "tv_weight", "init_noise"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                fail(f"{name} must be finite and >= 0, got {value!r}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            fail(f"learning_rate must be positive, got {self.learning_rate!r}")
        if self.init not in INITS:
            fail(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.optimizer not in OPTIMIZERS:
            fail(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.pooling not in POOLINGS:
            fail(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")

    def compiled_part(self) -> StyleConfig:
        """This config with the fields that do not change the compiled step set to defaults.

        Steps, seed, init and snapshots only steer the host loop, so runs that differ in them
        share one compilation.
        """
        return dataclasses.replace(self, steps=1, seed=0, init="content", init_noise=0.0, snapshot_every=0)

    def replace(self, **changes) -> StyleConfig:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, tuple[StyleConfig, str]] = {
    "seed": (
        StyleConfig(
            steps=3001,
            content_layers=(("block5_conv4", 1.0),),
            style_layers=SEED_STYLE_LAYERS,
            learning_rate=0.02,
            b1=0.99,
            eps=0.1,
            init="content+noise",
            snapshot_every=250,
        ),
        "The method jnst started from: Adam, 3001 steps with a snapshot every 250, content at "
        "block5_conv4, style at block1_conv1..block5_conv1 weighted 0.2 each, content plus noise init.",
    ),
    "default": (
        StyleConfig(),
        "The seed's layers and weights with Adam at lr 0.05, b1 0.9 (the seed's lr 0.02, b1 0.99 "
        "ends 3x higher after 100 steps at 128 px), from the content image, 500 steps.",
    ),
}


def preset(name: str) -> StyleConfig:
    """The named preset's config; a ValueError lists the names."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name][0]
