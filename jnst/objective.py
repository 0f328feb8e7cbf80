"""The total loss of an image given its targets and config: the function the pixels minimise."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jnst import losses
from jnst.config import StyleConfig
from jnst.targets import Targets
from jnst.vgg import features


def objective(
    image: jax.Array, graphdef: nnx.GraphDef, params: nnx.State, targets: Targets, config: StyleConfig
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Total loss of ``image`` (1, H, W, 3) and its weighted ``content``, ``style`` and ``tv`` terms."""
    norm = config.loss_norm
    acts = features(graphdef, params, image.astype(config.compute_dtype), config.layers, config.padding)
    content = sum(w * losses.content_loss(acts[n], targets.content[n], norm) for n, w in config.content_layers)
    if targets.gaussians:
        style = sum(w * losses.wasserstein_loss(acts[n], *targets.gaussians[n]) for n, w in config.style_layers)
    elif targets.masks:
        style = sum(
            w * losses.guided_gram_loss(acts[n], targets.grams[n], targets.masks[n], norm)
            for n, w in config.style_layers
        )
    else:
        style = losses.style_loss(acts, targets.grams, dict(config.style_layers), norm)
    tv = losses.total_variation_loss(image)
    terms = {
        "content": config.content_weight * jnp.asarray(content, jnp.float32),
        "style": config.beta * jnp.asarray(style, jnp.float32),
        "tv": config.tv_weight * tv,
    }
    total = losses.total_loss(content, style, tv, config.content_weight, config.beta, config.tv_weight)
    return total, terms
