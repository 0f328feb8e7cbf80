"""Reading and writing clips: video files through PyAV (FFmpeg's libraries as a wheel, the
``video`` extra), folders of frames and animated GIF/WebP through Pillow.

A clip is read whole, resized to the run's size, before the long computation starts, so that a
file that is not a video, is truncated, has no frames, or a folder whose frames differ in size
fails at once with one line (:class:`VideoError`). Every output is written to a temporary file
beside it and renamed over it when complete: a failed or interrupted write leaves no
half-written file.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from jnst import images

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
ENCODED = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}
ANIMATED = (".gif", ".webp")
AUDIO_COPIED = {
    ".mp4": {"aac", "mp3", "alac", "ac3"},
    ".mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le"},
    ".webm": {"opus", "vorbis"},
}  # fmt: skip  (.mkv takes any codec)
AUDIO_ENCODER = {".mp4": "aac", ".mov": "aac", ".webm": "libopus"}
DEFAULT_FPS = Fraction(24)


class VideoError(ValueError):
    """A clip that cannot be read or written: one line naming the path."""


@dataclass(frozen=True)
class Clip:
    """A clip's frames, uint8 (N, H, W, 3) at the run's size, its frame rate, and where it came
    from (``audio``: whether that file has an audio stream to copy)."""

    frames: np.ndarray
    fps: Fraction
    source: Path
    audio: bool = False


def _av():
    try:
        import av
    except ImportError as err:
        raise ImportError(f'video files need PyAV: pip install "jnst[video]" ({err})') from None
    return av


def frame_size(hw: tuple[int, int], long_side: int, encoded: bool) -> tuple[int, int]:
    """The run's frame size: ``long_side`` px on the long side, aspect kept; even for an encoded
    video (its 4:2:0 colour planes are half the frame a side)."""
    h, w = images.fit_long_side(hw, long_side)
    return (max(2, h - h % 2), max(2, w - w % 2)) if encoded else (h, w)


def read(path: os.PathLike | str, long_side: int, *, even: bool = False, fps: float | None = None) -> Clip:
    """The clip at ``path`` (a video file, or a folder of frames sorted by name, played at
    ``fps``, 24 when None), resized to ``long_side`` px (even sides with ``even``)."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, long_side, even, Fraction(fps).limit_denominator(1001) if fps else DEFAULT_FPS)
    if not path.is_file():
        raise VideoError(f"{path}: no such file or folder")
    if path.suffix.lower() in ANIMATED:  # FFmpeg does not decode animated WebP
        return _read_animated(path, long_side, even)
    return _read_file(path, long_side, even)


def _read_animated(path: Path, long_side: int, even: bool) -> Clip:
    from PIL import ImageSequence

    try:
        with Image.open(path) as img:
            pictures = [np.asarray(f.convert("RGB"), np.float32) / 255.0 for f in ImageSequence.Iterator(img)]
            ms = img.info.get("duration") or 1000 / float(DEFAULT_FPS)
    except (OSError, ValueError) as err:
        raise VideoError(f"{path}: not an animation, or one cut short ({err})") from None
    hw = frame_size(pictures[0].shape[:2], long_side, even)
    frames = np.stack([images.to_uint8(images.resize(p, hw)) for p in pictures])
    return Clip(frames, Fraction(1000, max(1, round(ms))), path)


def _read_folder(path: Path, long_side: int, even: bool, fps: Fraction) -> Clip:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise VideoError(f"{path}: no frames in this folder (give {', '.join(FRAME_SUFFIXES)} files)")
    first = images.load_image(files[0])
    hw = frame_size(first.shape[:2], long_side, even)
    frames = []
    for file in files:
        rgb = first if file == files[0] else images.load_image(file)
        if rgb.shape != first.shape:
            raise VideoError(f"{file}: {rgb.shape[1]}x{rgb.shape[0]} where the first frame ({files[0].name}) "
                             f"is {first.shape[1]}x{first.shape[0]}: a clip's frames share one size")  # fmt: skip
        frames.append(images.to_uint8(images.resize(rgb, hw)))
    return Clip(np.stack(frames), fps, path)


def _read_file(path: Path, long_side: int, even: bool) -> Clip:
    av = _av()
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as err:
        raise VideoError(f"{path}: not a video, or one cut short ({err.strerror or err})") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
        # The frame count from the container's index, or (WebM, Matroska: none) from the
        # duration its header records, less a frame for rounding): a file cut short decodes
        # fewer without an error.
        expected = stream.frames or (round(float(rate) * container.duration / 1e6) - 1 if container.duration else 0)
        frames, hw = [], None
        try:
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24")
                hw = hw or frame_size(rgb.shape[:2], long_side, even)
                frames.append(images.to_uint8(images.resize(rgb.astype(np.float32) / 255.0, hw)))
        except av.error.FFmpegError as err:
            reason = err.strerror or err
            raise VideoError(f"{path}: truncated or corrupt after {len(frames)} frames ({reason})") from None
        audio = bool(container.streams.audio)
    if not frames:
        raise VideoError(f"{path}: no frames decode")
    if expected and len(frames) < expected:
        raise VideoError(f"{path}: truncated: {len(frames)} of its {expected} frames decode")
    return Clip(np.stack(frames), Fraction(rate), path, audio)


def kind(path: Path) -> str:
    """``"folder"``, ``"encoded"`` (PyAV) or ``"animated"`` (Pillow) for an output path, or one
    line saying which outputs there are."""
    if str(path).endswith(os.sep) or path.is_dir() or not path.suffix:
        return "folder"
    suffix = path.suffix.lower()
    if suffix in ENCODED:
        return "encoded"
    if suffix in ANIMATED:
        return "animated"
    known = ", ".join([*ENCODED, *ANIMATED])
    raise VideoError(f"{path}: unsupported video extension {path.suffix!r} (use one of {known}, or a folder/)")


def frame_path(folder: Path, index: int) -> Path:
    """Where frame ``index`` (from 0) of a folder output goes."""
    return folder / f"frame_{index:06d}.png"


def _temp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def check_writable(path: Path) -> None:
    """Refuse an output that could not be written, before the long computation."""
    kind(path)
    if not path.parent.is_dir():
        raise VideoError(f"{path}: folder {path.parent} does not exist")
    temp = _temp(path)
    try:
        temp.touch()
        temp.unlink()
    except OSError as err:
        raise VideoError(f"{path}: cannot write in folder {path.parent} ({err.strerror})") from None


def write(
    path: Path, frames: Sequence[np.ndarray] | Iterator[np.ndarray], fps: Fraction, audio_from: Path | None = None
) -> None:
    """Encode uint8 (H, W, 3) ``frames`` at ``fps`` into the video file ``path`` (its extension
    picks the codec), with ``audio_from``'s audio copied (re-encoded where the container does not
    take its codec). Atomic: a temporary file renamed over ``path`` when complete."""
    temp = _temp(path)
    try:
        if kind(path) == "animated":
            _write_animated(temp, path.suffix.lower(), list(frames), fps)
        else:
            _write_encoded(temp, path.suffix.lower(), frames, fps, audio_from)
        os.replace(temp, path)
    except OSError as err:
        full = ": disk full" if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else ""
        raise VideoError(f"{path}: cannot write{full} ({err.strerror or err})") from None
    finally:
        temp.unlink(missing_ok=True)


def _write_animated(temp: Path, suffix: str, frames: list[np.ndarray], fps: Fraction) -> None:
    pictures = [Image.fromarray(f) for f in frames]
    options = {"lossless": False, "quality": 85} if suffix == ".webp" else {"optimize": True}
    with open(temp, "wb") as file:
        pictures[0].save(file, format=suffix[1:].upper(), save_all=True, append_images=pictures[1:],
                         duration=round(1000 / float(fps)), loop=0, **options)  # fmt: skip
        file.flush()
        os.fsync(file.fileno())


def _write_encoded(temp: Path, suffix: str, frames, fps: Fraction, audio_from: Path | None) -> None:
    av = _av()
    with av.open(str(temp), "w", format={".mkv": "matroska", ".mov": "mov"}.get(suffix, suffix[1:])) as out:
        video = None
        source = av.open(str(audio_from)) if audio_from is not None else None
        try:
            audio_in = source.streams.audio[0] if source is not None and source.streams.audio else None
            copy = audio_in is not None and (suffix == ".mkv" or audio_in.codec_context.name in AUDIO_COPIED[suffix])
            if audio_in is not None:
                audio_out = (out.add_stream_from_template(audio_in) if copy
                             else out.add_stream(AUDIO_ENCODER[suffix], rate=audio_in.rate or 48000))  # fmt: skip
            for frame in frames:
                if video is None:
                    video = out.add_stream(ENCODED[suffix], rate=fps)
                    video.height, video.width = frame.shape[:2]
                    video.pix_fmt = "yuv420p"
                    video.options = {"crf": "18"} if ENCODED[suffix] == "libx264" else {"crf": "24", "b:v": "0"}
                out.mux(video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
            out.mux(video.encode(None))
            if audio_in is not None:
                _audio(av, source, audio_in, out, audio_out, copy)
        finally:
            if source is not None:
                source.close()
    with open(temp, "rb+") as file:
        os.fsync(file.fileno())


def _audio(av, source, audio_in, out, audio_out, copy: bool) -> None:
    """Copy the audio packets, or decode and re-encode them for a container that needs it."""
    if copy:
        for packet in source.demux(audio_in):
            if packet.dts is not None:
                packet.stream = audio_out
                out.mux(packet)
        return
    for packet in source.demux(audio_in):
        for frame in packet.decode():
            frame.pts = None
            out.mux(audio_out.encode(frame))
    out.mux(audio_out.encode(None))


def probe(path: Path) -> dict[str, object]:
    """What a written video holds: ``frames``, ``fps``, ``size`` (w, h) and ``audio`` (codec or
    None); for tests and the benchmark."""
    av = _av()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        return {"frames": count, "fps": Fraction(stream.average_rate), "size": (stream.width, stream.height),
                "audio": audio}  # fmt: skip
