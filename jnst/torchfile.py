"""Read tensors saved by PyTorch's ``torch.save`` with numpy and pickle alone (no torch).

Two layouts exist:

* legacy (PyTorch < 1.6, ``_use_new_zipfile_serialization=False``): a stream of pickles
  (magic number, protocol version, system info, the object, the storage keys) followed by
  each storage's raw bytes, prefixed by its element count as a little-endian int64;
* zip (PyTorch >= 1.6): ``archive/data.pkl`` holds the object and ``archive/data/<key>``
  each storage's raw bytes.

Only plain containers of tensors are accepted: the unpickler resolves a short allow-list
of names, so a file cannot run code on load.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "ByteStorage": np.uint8,
    "CharStorage": np.int8,
    "ShortStorage": np.int16,
    "IntStorage": np.int32,
    "LongStorage": np.int64,
    "BoolStorage": np.bool_,
}
TORCH_DTYPES = {
    "float32": np.float32,
    "float": np.float32,
    "float64": np.float64,
    "double": np.float64,
    "float16": np.float16,
    "half": np.float16,
    "uint8": np.uint8,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "long": np.int64,
    "bool": np.bool_,
}


class TorchFileError(ValueError):
    """The file is not a readable ``torch.save`` file of tensors."""


class _StorageRef:
    """A storage named by a pickle's persistent id, filled in once its bytes are read."""

    def __init__(self, key: str, dtype: np.dtype):
        self.key = key
        self.dtype = np.dtype(dtype)
        self.array: np.ndarray | None = None


class _Dtype:
    """Stand-in for ``torch.<dtype>`` objects named inside zip-format pickles."""

    def __init__(self, name: str):
        self.dtype = np.dtype(TORCH_DTYPES[name])


class _TensorRef:
    """A tensor view onto a storage, materialised after all storages are read."""

    def __init__(self, storage: _StorageRef, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialise(self) -> np.ndarray:
        base = self.storage.array
        if base is None:
            raise TorchFileError(f"storage {self.storage.key} has no data")
        itemsize = base.dtype.itemsize
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True)) + 1
        if self.offset < 0 or min(self.stride, default=0) < 0:
            raise TorchFileError(f"tensor of shape {self.size} has a negative offset or stride")
        if 0 not in self.size and needed > base.size:  # a scalar (size ()) needs one element too
            raise TorchFileError(f"tensor of shape {self.size} overruns its storage {self.storage.key}")
        view = np.lib.stride_tricks.as_strided(
            base[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
        )
        return np.array(view)  # contiguous copy, detached from the storage


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_unused):
    return data


class _Unpickler(pickle.Unpickler):
    """Resolves only the names that a file of tensors needs."""

    def __init__(self, file: BinaryIO, storages: dict[str, _StorageRef]):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        if module == "torch" and name in TORCH_DTYPES:
            return _Dtype(name)
        raise TorchFileError(f"refusing to load {module}.{name}: only tensors and dicts are read")

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise TorchFileError(f"unknown persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        dtype = storage_type.dtype if isinstance(storage_type, _Dtype) else storage_type
        if key not in self.storages:
            self.storages[key] = _StorageRef(key, dtype)
        return self.storages[key]


def _materialise(obj: Any) -> Any:
    if isinstance(obj, _TensorRef):
        return obj.materialise()
    if isinstance(obj, dict):
        return {k: _materialise(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v) for v in obj)
    return obj


def _load_legacy(f: BinaryIO) -> Any:
    storages: dict[str, _StorageRef] = {}

    def unpickle() -> Any:  # every pickle in the stream goes through the allow-list
        return _Unpickler(f, storages).load()

    if unpickle() != LEGACY_MAGIC:
        raise TorchFileError("not a torch.save file (bad magic number)")
    unpickle()  # protocol version
    unpickle()  # system info: byte order and type sizes
    obj = unpickle()
    keys = unpickle()
    for key in keys:
        ref = storages[str(key)]
        count_bytes = f.read(8)
        if len(count_bytes) != 8:
            raise TorchFileError("file is truncated")
        count = int.from_bytes(count_bytes, "little")
        data = f.read(count * ref.dtype.itemsize)
        if len(data) != count * ref.dtype.itemsize:
            raise TorchFileError("file is truncated")
        ref.array = np.frombuffer(data, dtype=ref.dtype.newbyteorder("<"))
    return _materialise(obj)


def _load_zip(path: Path) -> Any:
    storages: dict[str, _StorageRef] = {}
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise TorchFileError("zip archive has no data.pkl")
        prefix = pkl[: -len("data.pkl")]
        obj = _Unpickler(io.BytesIO(zf.read(pkl)), storages).load()
        for key, ref in storages.items():
            try:
                data = zf.read(f"{prefix}data/{key}")
            except KeyError:
                raise TorchFileError(f"zip archive lacks storage {key}") from None
            ref.array = np.frombuffer(data, dtype=ref.dtype.newbyteorder("<"))
    return _materialise(obj)


def load(path: str | Path) -> Any:
    """Load a ``torch.save`` file of tensors as the same structure with numpy arrays."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        with open(path, "rb") as f:
            return _load_legacy(f)
    except TorchFileError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        IndexError,
        TypeError,
        ValueError,
        zipfile.BadZipFile,
        zlib.error,
    ) as err:
        raise TorchFileError(f"not a readable torch.save file ({type(err).__name__}: {err})") from None
