"""The total loss of an image given its targets, weights and config: the function the pixels minimise."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jnst import losses
from jnst.config import REFERENCE_SIDE, StyleConfig
from jnst.targets import Targets
from jnst.temporal import temporal_loss
from jnst.vgg import features

Array = jax.Array


class Weights(NamedTuple):
    """The objective's weights as arrays: alpha, beta, gamma and each layer's share.

    They are arguments of the compiled step, not part of its static config, so runs that differ
    only in weights share one compilation, and a sweep can map over them.
    """

    content: jax.Array
    style: jax.Array
    tv: jax.Array
    content_layers: dict[str, jax.Array]
    style_layers: dict[str, jax.Array]

    @classmethod
    def of(cls, config: StyleConfig, long_side: int = REFERENCE_SIDE, style_scale: float = 1.0) -> Weights:
        """The weights that ``config`` names for a picture of ``long_side`` px (its content weight
        grown and its style weight resolved to the ones in force, times ``style_scale``: see
        :mod:`jnst.balance`)."""
        f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
        return cls(
            f32(config.alpha(long_side)),
            f32(config.beta * style_scale),
            f32(config.tv_weight),
            {name: f32(w) for name, w in config.content_layers},
            {name: f32(w) for name, w in config.style_layers},
        )


def objective(
    image: jax.Array,
    graphdef: nnx.GraphDef,
    params: nnx.State,
    targets: Targets,
    weights: Weights,
    config: StyleConfig,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Total loss of ``image`` (1, H, W, 3) and its weighted ``content``, ``style`` and ``tv`` terms.

    ``config`` supplies what is compiled in (layers, normalisation, padding, dtype);
    ``weights`` every weight.
    """
    norm = config.loss_norm
    acts = features(graphdef, params, image.astype(config.compute_dtype), config.layers, config.padding)
    content = sum(w * losses.content_loss(acts[n], targets.content[n], norm) for n, w in weights.content_layers.items())
    if targets.gaussians:
        style = sum(
            w * losses.wasserstein_loss(acts[n], *targets.gaussians[n]) for n, w in weights.style_layers.items()
        )
    elif targets.masks:
        style = sum(
            w * losses.guided_gram_loss(acts[n], targets.grams[n], targets.masks[n], norm)
            for n, w in weights.style_layers.items()
        )
    else:
        style = losses.style_loss(acts, targets.grams, weights.style_layers, norm)
    total, terms = weigh(content, style, losses.total_variation_loss(image), weights)
    if targets.temporal:  # a video frame's (jnst.temporal); a still has none
        temporal = temporal_loss(image, targets.temporal)
        return total + temporal, {**terms, "temporal": temporal}
    return total, terms


def weigh(content: Array, style: Array, tv: Array, weights: Weights) -> tuple[Array, dict[str, Array]]:
    """The total loss and its weighted ``content``, ``style`` and ``tv`` terms from the unweighted
    ones (shared by the whole-picture objective and the tiled one, :mod:`jnst.tiled_objective`)."""
    content, style = jnp.asarray(content, jnp.float32), jnp.asarray(style, jnp.float32)
    terms = {"content": weights.content * content, "style": weights.style * style, "tv": weights.tv * tv}
    return losses.total_loss(content, style, tv, weights.content, weights.style, weights.tv), terms
