"""The deep segment: its backward from the kept masks is autodiff's gradient, in a few bytes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jnst import segment
from jnst.vgg import POOLS, Model, features, pool2x2


def _autodiff(model: Model, x: jax.Array, layers: tuple[str, ...]) -> dict[str, jax.Array]:
    """The deep layers' activations by the network's own forward, for ``jax.vjp``."""
    net = nnx.merge(model.graphdef, model.params)
    acts = {}
    for name in segment.deep_layers(layers):
        x = pool2x2(x, net.pooling) if name in POOLS else getattr(net, name)(x)
        acts[name] = x
    return {name: acts[name] for name in layers}


@pytest.mark.parametrize(
    ("pooling", "layers"),
    [
        ("max", ("block3_conv1", "block4_conv1", "block4_conv2")),  # the default's deep layers
        ("avg", ("block3_conv1", "block4_conv1", "block4_conv2")),
        ("max", ("block5_conv1", "block5_conv4")),  # the seed preset's
        ("max", ("block3_pool", "block4_conv1")),  # a pooling's output read by the loss
    ],
)
def test_backward_from_the_kept_masks_is_autodiffs_gradient(weights, shared_images, pooling, layers):
    from jnst.images import load_image

    model = Model.create(weights, pooling)
    image = jnp.asarray(load_image(shared_images / "tubingen.jpg", 96))[None]
    x = features(model.graphdef, model.params, image, (segment.CUT,))[segment.CUT]
    res = segment.forward(model.graphdef, model.params, x, layers)
    expected_acts, pullback = jax.vjp(lambda v: _autodiff(model, v, layers), x)
    keys = jax.random.split(jax.random.key(0), len(layers))
    cots = {name: jax.random.normal(k, expected_acts[name].shape) for name, k in zip(layers, keys, strict=True)}
    (expected,) = pullback(cots)
    got = segment.backward(model.graphdef, model.params, res, cots, jax.ShapeDtypeStruct(x.shape, x.dtype))
    for name in layers:
        np.testing.assert_allclose(res.acts[name], expected_acts[name], rtol=1e-6)
    assert float(jnp.linalg.norm(got - expected) / jnp.linalg.norm(expected)) < 1e-6


def test_the_masks_take_a_bit_a_value(model, rng):
    x = jnp.asarray(rng.random((1, 16, 16, 128), np.float32))
    res = segment.forward(model.graphdef, model.params, x, ("block3_conv1", "block4_conv2"))
    assert set(res.acts) == {"block3_conv1", "block4_conv2"}
    assert set(res.bits) == {"block3_conv2", "block3_conv3", "block3_conv4", "block3_pool", "block4_conv1"}
    for name, bits in res.bits.items():
        channels = 512 if name == "block4_conv1" else 256
        assert bits.dtype == jnp.uint8 and bits.shape[-1] == channels // 8, name
    assert segment.deep_layers(("block1_conv1", "block2_pool")) == ()
