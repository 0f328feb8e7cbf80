"""A fuzzed image corpus made from a seed, for tests/test_fuzz.py; nothing of it is committed.

:func:`make_corpus` writes real JPEG, PNG, GIF, WebP and TIFF bytes (made with Pillow from
the shared test photos and from synthetic pixels) into a folder, then damages copies of them:
truncation, bit flips and header fields that lie (sizes, colour types, chunk and segment
lengths, tags), beside valid oddities (CMYK, 16-bit, palettes with transparency, animations,
every EXIF orientation, 1x1 and 1x10000 pixels).  The same seed gives the same files, so a
failing case is reproduced from its name.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF")
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "TIFF": "tif"}
PHOTOS = ("astronaut.png", "chelsea.png", "tubingen.jpg")
BASE_SIDE = 48  # long side of the photos the damaged files start from: small, so fast to decode
ORIENTATION = 0x0112
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Header lies that leave no pixels or far too many: whatever the decoder makes of the rest,
# these must be refused.
MUST_REFUSE = {
    "PNG": {"width_0", "height_0", "65535x65535", "width_2g", "height_2g", "width_4g"},
    "JPEG": {"width_0", "height_0", "65535x65535", "progressive_height_0"},
    "GIF": {"screen_65535x65535", "frame_0x0"},
    "WEBP": {"vp8_width_0", "vp8_height_0", "vp8_16383x16383", "vp8l_16384x16384", "vp8x_canvas_2p24"},
    "TIFF": {"width_0", "length_0", "65535x65535", "width_4g"},
}

# Save options per format, one set per photo: the variants the damage starts from.
VARIANTS: dict[str, list[dict[str, object]]] = {
    "JPEG": [{"quality": 90}, {"quality": 80, "progressive": True}, {"quality": 75, "subsampling": 0}],
    "PNG": [{}, {"optimize": True}, {"compress_level": 1}],
    "GIF": [{}, {"transparency": 0}, {"interlace": False}],
    "WEBP": [{"quality": 80}, {"lossless": True}, {"quality": 60, "method": 0}],
    "TIFF": [{}, {"compression": "tiff_lzw"}, {"compression": "tiff_adobe_deflate"}],
}


@dataclass(frozen=True)
class Case:
    """One corpus file and what loading it must do.

    ``expect`` is "load" (a valid file: must load, as ``shape`` (height, width) once
    oriented), "refuse" (must raise ImageError) or "either" (damage a decoder may survive:
    random flips, or a cut in trailing data).
    """

    path: Path
    fmt: str
    kind: str  # base, truncated, bitflip, header, oddity
    expect: str
    shape: tuple[int, int] | None = None


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    """``img`` saved as ``fmt`` with Pillow, as bytes."""
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _as_saved(img: Image.Image, fmt: str) -> Image.Image:
    """``img`` in a mode ``fmt`` stores: GIF only holds palettes."""
    return img.quantize(64) if fmt == "GIF" else img


# --- chunk, segment and tag surgery -----------------------------------------------------------


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """A PNG's chunks as (type, body) pairs."""
    chunks, pos = [], len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def png_bytes(chunks: list[tuple[bytes, bytes]], length: dict[bytes, int] | None = None, bad_crc: bytes = b"") -> bytes:
    """A PNG from (type, body) chunks with correct CRCs, except the chunk type ``bad_crc``;
    ``length`` gives chunk types a length field that lies."""
    out = [PNG_SIGNATURE]
    for kind, body in chunks:
        crc = zlib.crc32(kind + body) ^ (kind == bad_crc)
        out.append(struct.pack(">I4s", (length or {}).get(kind, len(body)), kind) + body + struct.pack(">I", crc))
    return b"".join(out)


def png_raw(width: int, height: int, depth: int, colour: int, rows: np.ndarray) -> bytes:
    """A PNG written by hand (for modes Pillow does not save): ``rows`` are the big-endian samples."""
    raw = b"".join(b"\0" + row.tobytes() for row in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return png_bytes([(b"IHDR", ihdr), (b"IDAT", zlib.compress(raw)), (b"IEND", b"")])


def png_lie(data: bytes, *, ihdr: dict[int, int] | None = None, **changes: object) -> bytes:
    """``data`` with IHDR fields replaced (index into width, height, depth, colour, compression,
    filter, interlace), chunk bodies replaced (``body={type: bytes}``), a chunk added before
    IDAT (``insert=(type, body)``), or ``length``/``bad_crc`` as in :func:`png_bytes`."""
    chunks = png_chunks(data)
    fields = list(struct.unpack(">IIBBBBB", chunks[0][1]))
    for index, value in (ihdr or {}).items():
        fields[index] = value
    chunks[0] = (b"IHDR", struct.pack(">IIBBBBB", *fields))
    chunks = [(kind, changes.get("body", {}).get(kind, body)) for kind, body in chunks]
    if "insert" in changes:
        chunks.insert(1, changes["insert"])
    return png_bytes(chunks, changes.get("length"), changes.get("bad_crc", b""))


def jpeg_segment(data: bytes, markers: tuple[int, ...]) -> int:
    """Offset of the first JPEG segment (its 0xFF byte) with one of ``markers``."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        if data[pos + 1] in markers:
            return pos
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    raise ValueError(f"no JPEG segment {markers}")


SOF = (0xC0, 0xC1, 0xC2)


def patch(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    """``data`` with ``values`` packed by struct ``fmt`` written at ``offset``."""
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def gif_descriptor(data: bytes) -> int:
    """Offset of a GIF's first image descriptor (0x2C), after the colour table and extensions."""
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while data[pos] == 0x21:
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    return pos


def tiff_entry(data: bytes, tag: int) -> int:
    """Offset of the 12-byte entry for ``tag`` in a little-endian TIFF's first IFD."""
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, entry)[0] == tag:
            return entry
    raise ValueError(f"no TIFF tag {tag}")


def tiff_lie(data: bytes, tag: int, value: int) -> bytes:
    """Every value of ``tag`` set to ``value`` (as a LONG when it does not fit a SHORT)."""
    entry = tiff_entry(data, tag)
    kind, count = struct.unpack_from("<HI", data, entry + 2)
    if kind == 3 and value > 0xFFFF:
        return patch(data, entry + 2, "<HII", 4, 1, value)
    size = "<H" if kind == 3 else "<I"
    at = entry + 8 if count * struct.calcsize(size) <= 4 else struct.unpack_from("<I", data, entry + 8)[0]
    for i in range(count):
        data = patch(data, at + i * struct.calcsize(size), size, value)
    return data


# --- the files ----------------------------------------------------------------------------------


def _png_lies(rgb: bytes, palette: bytes) -> dict[str, bytes]:
    """PNGs whose IHDR, chunk lengths, CRCs or palette chunks lie, by name."""
    idat = dict(png_chunks(rgb))[b"IDAT"]
    return {
        "width_0": png_lie(rgb, ihdr={0: 0}),
        "height_0": png_lie(rgb, ihdr={1: 0}),
        "65535x65535": png_lie(rgb, ihdr={0: 65535, 1: 65535}),
        "width_2g": png_lie(rgb, ihdr={0: 2**31 - 1, 1: 1}),
        "height_2g": png_lie(rgb, ihdr={0: 1, 1: 2**31 - 1}),
        "width_4g": png_lie(rgb, ihdr={0: 2**32 - 1}),
        "4000x3000_short_data": png_lie(rgb, ihdr={0: 4000, 1: 3000}),
        "colour_1": png_lie(rgb, ihdr={3: 1}),
        "colour_7": png_lie(rgb, ihdr={3: 7}),
        "colour_3_no_plte": png_lie(rgb, ihdr={3: 3, 2: 8}),
        "colour_6_rgb_data": png_lie(rgb, ihdr={3: 6}),
        "depth_3": png_lie(rgb, ihdr={2: 3}),
        "depth_1_rgb": png_lie(rgb, ihdr={2: 1}),
        "depth_16_palette": png_lie(palette, ihdr={2: 16}),
        "interlace_7": png_lie(rgb, ihdr={6: 7}),
        "compression_1": png_lie(rgb, ihdr={4: 1}),
        "ihdr_length_4g": png_lie(rgb, length={b"IHDR": 2**32 - 1}),
        "ihdr_length_12": png_lie(rgb, length={b"IHDR": 12}),
        "idat_length_past_end": png_lie(rgb, length={b"IDAT": len(idat) + 1000}),
        "idat_length_0": png_lie(rgb, length={b"IDAT": 0}),
        "ihdr_bad_crc": png_lie(rgb, bad_crc=b"IHDR"),
        "idat_bad_crc": png_lie(rgb, bad_crc=b"IDAT"),
        "idat_not_zlib": png_lie(rgb, body={b"IDAT": bytes(range(256)) * 4}),
        "plte_empty": png_lie(palette, body={b"PLTE": b""}),
        "plte_one_entry": png_lie(palette, body={b"PLTE": b"\xff\x00\x00"}),
        "trns_longer_than_plte": png_lie(palette, insert=(b"tRNS", b"\x80" * 300)),
        "actl_4g_frames": png_lie(rgb, insert=(b"acTL", struct.pack(">II", 2**32 - 1, 0))),
    }


def _jpeg_lies(jpeg: bytes, progressive: bytes) -> dict[str, bytes]:
    """JPEGs whose frame header, segment lengths, tables or EXIF lie, by name."""
    sof = jpeg_segment(jpeg, SOF)
    dqt, dht, sos = (jpeg_segment(jpeg, (m,)) for m in (0xDB, 0xC4, 0xDA))
    dht_end = dht + 2 + struct.unpack_from(">H", jpeg, dht + 2)[0]
    app0 = jpeg_segment(jpeg, (0xE0,))
    exif = _exif_jpeg(3)
    tiff = exif.find(b"Exif\0\0") + 6
    ifd = tiff + struct.unpack_from(">I", exif, tiff + 4)[0]  # Pillow writes EXIF big-endian
    return {
        "height_0": patch(jpeg, sof + 5, ">H", 0),
        "width_0": patch(jpeg, sof + 7, ">H", 0),
        "65535x65535": patch(jpeg, sof + 5, ">HH", 65535, 65535),
        "height_65500_short_data": patch(jpeg, sof + 5, ">H", 65500),
        "components_0": patch(jpeg, sof + 9, ">B", 0),
        "components_2": patch(jpeg, sof + 9, ">B", 2),
        "components_255": patch(jpeg, sof + 9, ">B", 255),
        "precision_12": patch(jpeg, sof + 4, ">B", 12),
        "precision_16": patch(jpeg, sof + 4, ">B", 16),
        "precision_0": patch(jpeg, sof + 4, ">B", 0),
        "sampling_0": patch(jpeg, sof + 11, ">B", 0),
        "sampling_5x5": patch(jpeg, sof + 11, ">B", 0x55),
        "quant_table_3": patch(jpeg, sof + 12, ">B", 3),
        "dqt_length_65535": patch(jpeg, dqt + 2, ">H", 65535),
        "app0_length_1": patch(jpeg, app0 + 2, ">H", 1),
        "sof_length_0": patch(jpeg, sof + 2, ">H", 0),
        "no_huffman_tables": jpeg[:dht] + jpeg[dht_end:],
        "sos_components_9": patch(jpeg, sos + 4, ">B", 9),
        "progressive_height_0": patch(progressive, jpeg_segment(progressive, SOF) + 5, ">H", 0),
        "exif_orientation_9": _exif_jpeg(9),
        "exif_orientation_65535": _exif_jpeg(65535),
        "exif_entries_65535": patch(exif, ifd, ">H", 65535),
        "exif_ifd_past_end": patch(exif, tiff + 4, ">I", 2**31),
        "exif_orientation_as_1000_doubles": patch(exif, ifd + 2 + 2, ">HI", 12, 1000),
    }


def _gif_lies(gif: bytes, transparent: bytes) -> dict[str, bytes]:
    """GIFs whose screen, frame, LZW code size, colour table or block sizes lie, by name."""
    desc = gif_descriptor(gif)
    gct = 3 << ((gif[10] & 7) + 1)
    gce = transparent.find(b"\x21\xf9")
    last_block = pos = desc + 11  # the image data's sub-blocks, after the LZW code size
    while gif[pos]:
        last_block, pos = pos, pos + gif[pos] + 1
    return {
        "screen_0x0": patch(gif, 6, "<HH", 0, 0),
        "screen_65535x65535": patch(gif, 6, "<HH", 65535, 65535),
        "screen_1x1_frame_bigger": patch(gif, 6, "<HH", 1, 1),
        "frame_width_65535": patch(gif, desc + 5, "<H", 65535),
        "frame_left_60000": patch(gif, desc + 1, "<H", 60000),
        "frame_0x0": patch(gif, desc + 5, "<HH", 0, 0),
        "lzw_size_0": patch(gif, desc + 10, "<B", 0),
        "lzw_size_12": patch(gif, desc + 10, "<B", 12),
        "lzw_size_255": patch(gif, desc + 10, "<B", 255),
        "no_colour_table_flag": patch(gif, 10, "<B", gif[10] & 0x7F),
        "colour_table_768_claimed": patch(gif, 10, "<B", gif[10] | 7),
        "colour_table_cut": gif[: 13 + gct // 2] + gif[13 + gct :],
        "extension_size_255": patch(transparent, gce + 2, "<B", 255),
        "data_block_size_255": patch(gif, last_block, "<B", 255),
    }


def _webp_lies(lossy: bytes, lossless: bytes, extended: bytes) -> dict[str, bytes]:
    """WebPs whose RIFF and chunk sizes, frame sizes or canvas lie, by name."""
    assert lossy[12:16] == b"VP8 " and lossless[12:16] == b"VP8L" and extended[12:16] == b"VP8X"
    return {
        "riff_size_4g": patch(lossy, 4, "<I", 2**32 - 1),
        "riff_size_4": patch(lossy, 4, "<I", 4),
        "chunk_size_4g": patch(lossy, 16, "<I", 2**32 - 16),
        "chunk_size_0": patch(lossy, 16, "<I", 0),
        "vp8_width_0": patch(lossy, 26, "<H", 0),
        "vp8_height_0": patch(lossy, 28, "<H", 0),
        "vp8_16383x16383": patch(lossy, 26, "<HH", 16383, 16383),
        "vp8l_16384x16384": patch(lossless, 21, "<I", (lossless[24] >> 4 << 28) | (16383 << 14) | 16383),
        "vp8l_1x1": patch(lossless, 21, "<I", lossless[24] >> 4 << 28),
        "vp8x_canvas_2p24": patch(extended, 24, "<HBHB", 0xFFFF, 0xFF, 0xFFFF, 0xFF),
        "vp8x_canvas_1x1": patch(extended, 24, "<HBHB", 0, 0, 0, 0),
        "vp8x_claims_animation": patch(extended, 20, "<B", extended[20] | 0x02),
        "unknown_chunk_vp9": lossy[:12] + b"VP9 " + lossy[16:],
    }


def _tiff_lies(rgb: bytes, gray: bytes) -> dict[str, bytes]:
    """TIFFs whose tags (sizes, samples, compression, strips) or IFD offsets lie, by name."""
    ifd = struct.unpack_from("<I", rgb, 4)[0]
    entries = struct.unpack_from("<H", rgb, ifd)[0]
    return {
        "width_0": tiff_lie(rgb, 256, 0),
        "length_0": tiff_lie(rgb, 257, 0),
        "65535x65535": tiff_lie(tiff_lie(rgb, 256, 65535), 257, 65535),
        "width_4g": tiff_lie(rgb, 256, 2**32 - 1),
        "bits_3": tiff_lie(rgb, 258, 3),
        "bits_64": tiff_lie(rgb, 258, 64),
        "bits_0": tiff_lie(gray, 258, 0),
        "samples_0": tiff_lie(rgb, 277, 0),
        "samples_200": tiff_lie(rgb, 277, 200),
        "compression_9999": tiff_lie(rgb, 259, 9999),
        "compression_jpeg_on_raw": tiff_lie(rgb, 259, 7),
        "compression_lzw_on_raw": tiff_lie(rgb, 259, 5),
        "photometric_99": tiff_lie(rgb, 262, 99),
        "photometric_cielab": tiff_lie(rgb, 262, 8),
        "strip_offset_past_end": tiff_lie(rgb, 273, 2**31),
        "strip_bytes_4g": tiff_lie(rgb, 279, 2**32 - 16),
        "rows_per_strip_0": tiff_lie(rgb, 278, 0),
        "planar_2": tiff_lie(rgb, 284, 2),
        "ifd_past_end": patch(rgb, 4, "<I", 2**31),
        "ifd_offset_0": patch(rgb, 4, "<I", 0),
        "ifd_entries_65535": patch(rgb, ifd, "<H", 65535),
        "ifd_loop": patch(rgb, ifd + 2 + 12 * entries, "<I", ifd),
        "big_endian_mark_on_little_data": b"MM" + rgb[2:],
    }


def _exif_jpeg(orientation: int, img: Image.Image | None = None) -> bytes:
    """A JPEG (48 x 32 stripes unless ``img``) with EXIF Orientation ``orientation``."""
    img = img or _stripes()
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return encode(img, "JPEG", quality=90, exif=exif)


def _stripes(width: int = 48, height: int = 32) -> Image.Image:
    """An asymmetric RGB test card: a red left third, a green top band, blue elsewhere."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 2] = 255
    pixels[: height // 4] = (0, 255, 0)
    pixels[:, : width // 3] = (255, 0, 0)
    return Image.fromarray(pixels)


def _noise(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Random RGB pixels: nothing for an encoder to smooth over."""
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _animation(frames: list[Image.Image], fmt: str) -> bytes:
    """``frames`` saved as one animated (or multi-page) file."""
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _oddities(photo: Image.Image, rng: np.random.Generator) -> dict[str, tuple[str, bytes, tuple[int, int]]]:
    """Valid but unusual files: name -> (format, bytes, (height, width) once oriented)."""
    w, h = photo.size
    odd: dict[str, tuple[str, bytes, tuple[int, int]]] = {}
    for orientation in range(1, 9):  # 5 to 8 turn the picture a quarter
        odd[f"exif_orientation_{orientation}"] = (
            "JPEG",
            _exif_jpeg(orientation, photo),
            (h, w) if orientation < 5 else (w, h),
        )
    for fmt, orientation in (("PNG", 6), ("WEBP", 8), ("TIFF", 3)):
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        odd[f"exif_orientation_{orientation}"] = (
            fmt,
            encode(photo, fmt, exif=exif),
            (h, w) if orientation < 5 else (w, h),
        )
    odd["cmyk"] = ("JPEG", encode(photo.convert("CMYK"), "JPEG"), (h, w))
    odd["cmyk_tiff"] = ("TIFF", encode(photo.convert("CMYK"), "TIFF"), (h, w))
    gray16 = (np.asarray(photo.convert("L"), np.uint16) * 257).astype(">u2")
    rgb16 = (np.asarray(photo, np.uint16) * 257).astype(">u2").reshape(h, w * 3)
    gray_alpha16 = np.stack([gray16, np.full_like(gray16, 40000)], axis=-1).reshape(h, w * 2)
    odd["16bit_gray"] = ("PNG", encode(Image.fromarray(gray16.astype(np.uint16)), "PNG"), (h, w))
    odd["16bit_rgb"] = ("PNG", png_raw(w, h, 16, 2, rgb16), (h, w))
    odd["16bit_gray_alpha"] = ("PNG", png_raw(w, h, 16, 4, gray_alpha16), (h, w))
    odd["16bit_gray_tiff"] = ("TIFF", encode(Image.fromarray(gray16.astype(np.uint16)), "TIFF"), (h, w))
    odd["16bit_big_endian_tiff"] = ("TIFF", encode(Image.frombytes("I;16B", (w, h), gray16.tobytes()), "TIFF"), (h, w))
    odd["32bit_int_tiff"] = ("TIFF", encode(Image.fromarray(gray16.astype(np.int32)), "TIFF"), (h, w))
    odd["float_tiff"] = ("TIFF", encode(photo.convert("F"), "TIFF"), (h, w))
    palette = photo.quantize(16)
    odd["palette_transparent"] = ("PNG", encode(palette, "PNG", transparency=3), (h, w))
    odd["palette_alpha_per_entry"] = ("PNG", encode(palette, "PNG", transparency=bytes(range(0, 256, 16))), (h, w))
    odd["palette_transparent_gif"] = ("GIF", encode(palette, "GIF", transparency=3), (h, w))
    odd["palette_tiff"] = ("TIFF", encode(palette, "TIFF"), (h, w))
    frames = [photo, photo.rotate(90), _noise(rng, w // 2, h // 2).resize((w, h))]
    for fmt in ("GIF", "PNG", "WEBP", "TIFF"):
        odd[f"animated_{fmt.lower()}"] = (fmt, _animation([_as_saved(f, fmt) for f in frames], fmt), (h, w))
    for fmt in FORMATS:
        odd[f"1x1_{fmt.lower()}"] = (fmt, encode(_as_saved(_noise(rng, 1, 1), fmt), fmt), (1, 1))
        odd[f"1x10000_{fmt.lower()}"] = (fmt, encode(_as_saved(_noise(rng, 10000, 1), fmt), fmt), (1, 10000))
        odd[f"10000x1_{fmt.lower()}"] = (fmt, encode(_as_saved(_noise(rng, 1, 10000), fmt), fmt), (10000, 1))
    odd["gray"] = ("JPEG", encode(photo.convert("L"), "JPEG"), (h, w))
    odd["bilevel"] = ("PNG", encode(photo.convert("1"), "PNG"), (h, w))
    odd["bilevel_group4"] = ("TIFF", encode(photo.convert("1"), "TIFF", compression="group4"), (h, w))
    odd["gray_alpha"] = ("PNG", encode(photo.convert("LA"), "PNG"), (h, w))
    odd["rgba_lossless"] = ("WEBP", encode(photo.convert("RGBA"), "WEBP", lossless=True), (h, w))
    odd["jpeg_in_tiff"] = ("TIFF", encode(photo, "TIFF", compression="jpeg"), (h, w))
    return odd


def _flip(data: bytes, rng: np.random.Generator, header: bool) -> bytes:
    """``data`` with 1-8 random bits flipped, in the first 128 bytes when ``header``."""
    out = bytearray(data)
    end = min(128, len(data)) if header else len(data)
    for pos in rng.integers(0, end, rng.integers(1, 9)):
        out[pos] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def make_corpus(seed: int, folder: Path, photos: Path) -> list[Case]:
    """Write the corpus into ``folder`` from the shared ``photos`` folder; one Case per file.

    Per format: each photo as a base file (a different save variant each), 4 truncations and
    4 bit-flipped copies of each base, the header lies above, plus the valid oddities.
    """
    rng = np.random.default_rng(seed)
    cases: list[Case] = []

    def add(fmt: str, kind: str, name: str, data: bytes, expect: str, shape: tuple[int, int] | None = None) -> None:
        path = folder / f"{fmt.lower()}_{kind}_{name}.{EXTENSIONS[fmt]}"
        path.write_bytes(data)
        cases.append(Case(path, fmt, kind, expect, shape))

    sources = []
    for name in PHOTOS:
        with Image.open(photos / name) as img:
            sources.append(img.convert("RGB").reduce(max(1, max(img.size) // BASE_SIDE)))
    bases: dict[str, list[bytes]] = {}
    for fmt in FORMATS:
        bases[fmt] = [
            encode(_as_saved(img, fmt), fmt, **opts) for img, opts in zip(sources, VARIANTS[fmt], strict=True)
        ]
        for i, (img, data) in enumerate(zip(sources, bases[fmt], strict=True)):
            add(fmt, "base", str(i), data, "load", (img.height, img.width))
            cuts = [int(rng.integers(1, 32)), *rng.integers(32, len(data), 2), len(data) - 1]
            for j, cut in enumerate(cuts):
                # A cut in the header must be refused; later ones may only lose the trailer.
                add(fmt, "truncated", f"{i}_{j}_at_{cut}", data[:cut], "refuse" if j == 0 else "either")
            for j in range(4):
                add(fmt, "bitflip", f"{i}_{j}", _flip(data, rng, header=j < 2), "either")
    exif = Image.Exif()
    exif[ORIENTATION] = 1
    lies: dict[str, dict[str, bytes]] = {
        "PNG": _png_lies(bases["PNG"][0], encode(sources[0].quantize(16), "PNG")),
        "JPEG": _jpeg_lies(bases["JPEG"][0], bases["JPEG"][1]),
        "GIF": _gif_lies(bases["GIF"][0], bases["GIF"][1]),
        "WEBP": _webp_lies(bases["WEBP"][0], bases["WEBP"][1], encode(sources[0], "WEBP", exif=exif)),
        "TIFF": _tiff_lies(bases["TIFF"][0], encode(sources[0].convert("L"), "TIFF")),
    }
    for fmt, damaged in lies.items():
        for name, data in damaged.items():
            add(fmt, "header", name, data, "refuse" if name in MUST_REFUSE[fmt] else "either")
    for name, (fmt, data, shape) in _oddities(sources[1], rng).items():
        add(fmt, "oddity", name, data, "load", shape)
    return cases
