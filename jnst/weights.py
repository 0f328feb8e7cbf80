"""VGG19 weights in jnst's own file format: a flat ``.npz`` read with ``allow_pickle=False``.

Entries (kernels are HWIO, as Flax's ``nnx.Conv`` holds them):

* ``meta/format``: ``"jnst.vgg19.v1"``
* ``meta/preprocessing``: ``"caffe"`` (BGR, 0-255, minus the ImageNet mean pixel; the
  original Caffe/Keras release) or ``"torch"`` (RGB in [0, 1], minus mean, over std;
  torchvision's retrained weights)
* ``meta/source``: where the weights came from, free text
* per conv layer ``L``: ``L/bias`` and either ``L/kernel`` (float32) or the quantised pair
  ``L/codes`` (uint8 indices, HWIO) and ``L/codebook`` (float32, 256 entries); quantised
  layers are expanded on load
* ``meta/checksum``: sha256 over every other entry's name, dtype, shape and bytes, checked
  on load so a damaged file is refused rather than silently used.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = "jnst.vgg19.v1"
PREPROCESSINGS = ("caffe", "torch")
DEFAULT_FILE = "vgg19_imagenet_q.npz"

# (in_channels, out_channels) of the 16 conv layers, in Keras's names.
CONV_CHANNELS: dict[str, tuple[int, int]] = {
    "block1_conv1": (3, 64),
    "block1_conv2": (64, 64),
    "block2_conv1": (64, 128),
    "block2_conv2": (128, 128),
    "block3_conv1": (128, 256),
    "block3_conv2": (256, 256),
    "block3_conv3": (256, 256),
    "block3_conv4": (256, 256),
    "block4_conv1": (256, 512),
    "block4_conv2": (512, 512),
    "block4_conv3": (512, 512),
    "block4_conv4": (512, 512),
    "block5_conv1": (512, 512),
    "block5_conv2": (512, 512),
    "block5_conv3": (512, 512),
    "block5_conv4": (512, 512),
}


class WeightsError(ValueError):
    """A weights file is missing, damaged or not VGG19."""


@dataclass(frozen=True)
class VGGWeights:
    """Expanded float32 weights: ``layers[name] = (kernel HWIO, bias)``, plus preprocessing."""

    layers: Mapping[str, tuple[np.ndarray, np.ndarray]]
    preprocessing: str
    source: str = ""


def checksum(entries: Mapping[str, np.ndarray]) -> str:
    """sha256 over the entries in name order, binding each name to its dtype, shape and bytes."""
    h = hashlib.sha256()
    for name in sorted(entries):
        if name == "meta/checksum":
            continue
        arr = np.ascontiguousarray(entries[name])
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def quantise(kernel: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Nearest codebook entry for each weight (the codebook must be sorted ascending)."""
    flat = kernel.ravel()
    idx = np.clip(np.searchsorted(codebook, flat), 1, len(codebook) - 1)
    left, right = codebook[idx - 1], codebook[idx]
    idx = np.where(np.abs(flat - left) <= np.abs(flat - right), idx - 1, idx)
    return idx.astype(np.uint8).reshape(kernel.shape)


def _check_layer(path: Path, name: str, kernel: np.ndarray, bias: np.ndarray) -> None:
    cin, cout = CONV_CHANNELS[name]
    if kernel.shape != (3, 3, cin, cout) or bias.shape != (cout,):
        raise WeightsError(
            f"{path}: layer {name} has kernel {kernel.shape} and bias {bias.shape}, "
            f"VGG19 needs (3, 3, {cin}, {cout}) and ({cout},)"
        )


def save(path: str | Path, weights: VGGWeights, codebooks: Mapping[str, np.ndarray] | None = None) -> None:
    """Write ``weights``; layers named in ``codebooks`` are stored quantised against them."""
    path = Path(path)
    if weights.preprocessing not in PREPROCESSINGS:
        raise WeightsError(f"{path}: unknown preprocessing {weights.preprocessing!r}")
    entries: dict[str, np.ndarray] = {
        "meta/format": np.array(FORMAT),
        "meta/preprocessing": np.array(weights.preprocessing),
        "meta/source": np.array(weights.source),
    }
    for name in CONV_CHANNELS:
        if name not in weights.layers:
            raise WeightsError(f"{path}: layer {name} is missing")
        kernel, bias = weights.layers[name]
        kernel, bias = np.asarray(kernel, np.float32), np.asarray(bias, np.float32)
        _check_layer(path, name, kernel, bias)
        entries[f"{name}/bias"] = bias
        if codebooks is not None and name in codebooks:
            book = np.sort(np.asarray(codebooks[name], np.float32))
            if book.ndim != 1 or not 2 <= book.size <= 256:  # codes are uint8 indices
                raise WeightsError(f"{path}: layer {name} codebook shape {book.shape} is not 2-256 values")
            entries[f"{name}/codes"] = quantise(kernel, book)
            entries[f"{name}/codebook"] = book
        else:
            entries[f"{name}/kernel"] = kernel
    entries["meta/checksum"] = np.array(checksum(entries))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **entries)
    tmp.replace(path)


def default_path() -> Path:
    """The shipped weights: the Keras/Caffe VGG19 ImageNet release, quantised (see weights/)."""
    return Path(str(importlib.resources.files("jnst._weights").joinpath(DEFAULT_FILE)))


def load(path: str | Path | None = None) -> VGGWeights:
    """Read, verify and expand a jnst weights file (the shipped default when ``path`` is None)."""
    path = default_path() if path is None else Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            entries = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
        raise WeightsError(f"{path}: not a readable jnst weights file ({err})") from None
    if str(entries.get("meta/format", "")) != FORMAT:
        raise WeightsError(f"{path}: not a jnst weights file (format should be {FORMAT})")
    if str(entries.get("meta/checksum", "")) != checksum(entries):
        raise WeightsError(f"{path}: checksum mismatch, the file is damaged")
    preprocessing = str(entries["meta/preprocessing"])
    if preprocessing not in PREPROCESSINGS:
        raise WeightsError(f"{path}: unknown preprocessing {preprocessing!r}")
    layers = {}
    for name in CONV_CHANNELS:
        if f"{name}/bias" not in entries:
            raise WeightsError(f"{path}: layer {name} is missing")
        if f"{name}/kernel" in entries:
            kernel = entries[f"{name}/kernel"].astype(np.float32)
        elif {f"{name}/codes", f"{name}/codebook"} <= entries.keys():
            book, codes = entries[f"{name}/codebook"].astype(np.float32), entries[f"{name}/codes"]
            if codes.dtype != np.uint8 or book.ndim != 1 or (codes.size and codes.max() >= book.size):
                raise WeightsError(f"{path}: layer {name} has codes that do not index its codebook")
            kernel = book[codes]
        else:
            raise WeightsError(f"{path}: layer {name} has neither a kernel nor codes and a codebook")
        bias = entries[f"{name}/bias"].astype(np.float32)
        _check_layer(path, name, kernel, bias)
        layers[name] = (kernel, bias)
    return VGGWeights(layers, preprocessing, str(entries["meta/source"]))
