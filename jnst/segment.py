"""VGG19 past ``block2_pool``, run forward keeping only what its input gradient needs, and back.

A tiled step (:mod:`jnst.tiled_objective`) runs forward for the picture's statistics, then differentiates
against them. Past ``block2_pool`` the maps hold 1/16 of the pixels or fewer, yet their
convolutions are about two thirds of the forward's arithmetic (the default's layers), and the
gradient with respect to their *input* (the weights are fixed) needs little of them: each
ReLU's and pooling's mask, one bit a value, and the activations of the layers the loss reads.
:func:`forward` keeps those, about 140 bytes a picture pixel for the default's layers (against
2.5 KB a pixel for a whole step), so a tiled step runs only blocks 1 and 2 forward twice and
comes back through the deep layers with :func:`backward`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jnst.vgg import LAYERS, POOLS, convolve, max_pool_grad, max_pool_with_mask, pool2x2

Array = jax.Array
CUT = "block2_pool"


class Residuals(NamedTuple):
    """What :func:`backward` needs: the activations of the layers the loss reads (``acts``),
    and every other deep layer's mask, packed 8 values to a byte along the channels (``bits``)."""

    acts: dict[str, Array]
    bits: dict[str, Array]


def deep_layers(layers: Iterable[str]) -> tuple[str, ...]:
    """VGG19's layers after :data:`CUT` up to the deepest of ``layers``: empty when none is deeper."""
    last = max(LAYERS.index(name) for name in layers)
    return LAYERS[LAYERS.index(CUT) + 1 : last + 1]


def forward(graphdef: nnx.GraphDef, params: nnx.State, x: Array, layers: Iterable[str]) -> Residuals:
    """From ``x``, :data:`CUT`'s activations, the deep layers up to the deepest of ``layers``:
    the activations of ``layers`` and the masks of the rest."""
    net = nnx.merge(graphdef, params)
    wanted = set(layers)
    acts, bits = {}, {}
    for name in deep_layers(layers):
        if name in POOLS and net.pooling == "max":
            x, mask = max_pool_with_mask(x)
            bits[name] = jnp.packbits(mask, axis=-1)
        elif name in POOLS:
            x = pool2x2(x, net.pooling)  # linear: its gradient needs nothing kept
        else:
            x = getattr(net, name)(x)
            if name not in wanted:  # a read layer's mask is its activations > 0
                bits[name] = jnp.packbits(x > 0, axis=-1)
        if name in wanted:
            acts[name] = x
    return Residuals(acts, bits)


def backward(
    graphdef: nnx.GraphDef, params: nnx.State, res: Residuals, cots: dict[str, Array], x: jax.ShapeDtypeStruct
) -> Array:
    """The gradient with respect to ``x`` (:data:`CUT`'s activations, given by shape) of a loss
    whose gradients with respect to the activations in ``res.acts`` are ``cots``."""
    net = nnx.merge(graphdef, params)
    names = deep_layers([*res.acts, *res.bits])
    inputs = [x]
    for name in names[:-1]:  # each layer's input shape, from the first's
        s = inputs[-1].shape
        c = s[-1] if name in POOLS else getattr(net, name).kernel.shape[-1]
        hw = (s[1] // 2, s[2] // 2) if name in POOLS else s[1:3]
        inputs.append(jax.ShapeDtypeStruct((s[0], *hw, c), x.dtype))
    g = None
    for name, inp in zip(reversed(names), reversed(inputs), strict=True):
        if name in cots:
            g = cots[name].astype(x.dtype) if g is None else g + cots[name].astype(x.dtype)
        if name in POOLS:
            if net.pooling == "max":
                g = max_pool_grad(_unpack(res.bits[name], inp.shape[-1]), g)[0]
            else:
                g = _transpose(functools.partial(pool2x2, pooling=net.pooling), inp, g)
        else:
            mask = res.acts[name] > 0 if name in res.acts else _unpack(res.bits[name], g.shape[-1])
            kernel = getattr(net, name).kernel[...]
            g = _transpose(lambda v, k=kernel: convolve(v, k), inp, jnp.where(mask, g, 0))
    return g


def _unpack(bits: Array, channels: int) -> Array:
    return jnp.unpackbits(bits, axis=-1, count=channels).astype(bool)


def _transpose(linear, x: jax.ShapeDtypeStruct, g: Array) -> Array:
    """``linear``'s transpose applied to ``g``: the gradient with respect to its input ``x``."""
    return jax.linear_transpose(linear, x)(g)[0]
