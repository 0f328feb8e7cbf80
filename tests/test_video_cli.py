"""``jnst video`` and :func:`jnst.video.stylize_video`: clips in and out, resume, one-line errors."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from jnst import StyleConfig, video_io  # noqa: E402
from jnst.cli import main  # noqa: E402
from jnst.video import VideoConfig, stylize_video  # noqa: E402

HW, FRAMES, FPS = (48, 64), 5, 12
FAST = ["--size", "64", "--steps", "4", "--frame-steps", "2", "--quiet"]


@pytest.fixture
def style_path(shared_images) -> Path:
    return shared_images / "starry_night.jpg"


def _frames(n: int = FRAMES, hw: tuple[int, int] = HW) -> list[np.ndarray]:
    """A bar moving 4 px a frame over a horizontal ramp (uint8 RGB)."""
    out = []
    for i in range(n):
        img = np.zeros((*hw, 3), np.uint8)
        img[..., 1] = np.linspace(0, 255, hw[1], dtype=np.uint8)
        img[:, 8 + 4 * i : 20 + 4 * i, 0] = 255
        out.append(img)
    return out


def _clip(path: Path, frames: list[np.ndarray], audio: bool = True) -> Path:
    """An H.264 clip at FPS, with a second of AAC tone when ``audio``."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.height, video.width, video.pix_fmt = *frames[0].shape[:2], "yuv420p"
        sound = out.add_stream("aac", rate=48000) if audio else None
        for frame in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(video.encode(None))
        if sound is not None:
            tone = (0.2 * np.sin(np.arange(48000) * 2 * np.pi * 440 / 48000)).astype(np.float32)[None]
            samples = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            samples.sample_rate = 48000
            out.mux(sound.encode(samples))
            out.mux(sound.encode(None))
    return path


def _folder(path: Path, frames: list[np.ndarray]) -> Path:
    from PIL import Image

    path.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(path / f"f{i:03d}.png")
    return path


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jnst: error: ") and "\n" not in err
    return err


def test_a_video_file_comes_out_with_its_frames_rate_and_audio(tmp_path, style_path):
    source = _clip(tmp_path / "in.mp4", _frames())
    out = tmp_path / "out.mp4"
    assert main(["video", str(source), str(style_path), "-o", str(out), *FAST]) == 0
    assert video_io.probe(out) == {"frames": FRAMES, "fps": FPS, "size": HW[::-1], "audio": "aac"}
    assert not (tmp_path / "out.mp4.frames").exists()  # the frame folder goes once the file is encoded


def test_a_folder_of_frames_to_webm_and_to_a_folder(tmp_path, style_path):
    frames = _folder(tmp_path / "frames", _frames(3))
    assert main(["video", str(frames), str(style_path), "-o", str(tmp_path / "out.webm"), "--fps", "6", *FAST]) == 0
    assert video_io.probe(tmp_path / "out.webm") == {"frames": 3, "fps": 6, "size": HW[::-1], "audio": None}
    assert main(["video", str(frames), str(style_path), "-o", str(tmp_path / "outdir") + "/", *FAST]) == 0
    assert sorted(p.name for p in (tmp_path / "outdir").iterdir()) == [f"frame_{i:06d}.png" for i in range(3)]


def test_every_frame_after_the_second_runs_the_compiled_step_of_the_second(model, small_pair):
    from jnst.loop import run_chunk

    content, style = small_pair
    clip = [np.roll(content, 2 * i, axis=1) for i in range(5)]
    run = stylize_video(clip, style, StyleConfig(steps=4), VideoConfig(frame_steps=2), model=model)
    next(run), next(run)
    compiled = run_chunk._cache_size()
    assert len(list(run)) == 3 and run_chunk._cache_size() == compiled


def test_a_resumed_clip_continues_as_the_uninterrupted_one(model, small_pair):
    content, style = small_pair
    clip = [np.roll(content, 2 * i, axis=1) for i in range(4)]
    cfg, video = StyleConfig(steps=4), VideoConfig(frame_steps=3)
    whole = list(stylize_video(clip, style, cfg, video, model=model))
    done = [(f.image * 255).round().astype(np.uint8) for f in whole[:2]]  # as the PNGs read back
    rest = list(stylize_video(clip, style, cfg, video, model=model, done=done, loss_scale=whole[0].loss_scale))
    assert [f.index for f in rest] == [2, 3]
    for a, b in zip(rest, whole[2:], strict=True):
        np.testing.assert_array_equal(a.image, b.image)


def test_sigkill_loses_at_most_the_current_frame_and_resume_redoes_nothing(tmp_path, style_path):
    frames = _folder(tmp_path / "frames", _frames(6))
    argv = ["video", str(frames), str(style_path), "-o", str(tmp_path / "killed") + "/", *FAST]
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "jnst", *argv], env=env, stderr=subprocess.DEVNULL)
    second = video_io.frame_path(tmp_path / "killed", 1)
    deadline = time.monotonic() + 240
    while not second.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "killed").glob("frame_*.png")}
    assert 2 <= len(written) < 6
    assert main([*argv, "--resume"]) == 0
    kept = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "killed").glob("frame_*.png")}
    assert len(kept) == 6 and all(kept[name] == mtime for name, mtime in written.items())
    assert main(["video", str(frames), str(style_path), "-o", str(tmp_path / "whole") + "/", *FAST]) == 0
    for name in kept:
        a = video_io.read(tmp_path / "killed" / name, 64).frames
        b = video_io.read(tmp_path / "whole" / name, 64).frames
        # Measured: bitwise equal (AVX-512 EPYC); one level allowed for another process's kernels.
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_bad_clips_get_one_line(tmp_path, capsys, style_path):
    style = str(style_path)
    (tmp_path / "notes.txt").write_text("not a video")
    assert "not a video" in _one_line_error(capsys, ["video", str(tmp_path / "notes.txt"), style, "-o", "o.mp4"])
    webm = tmp_path / "in.webm"
    video_io.write(webm, _frames(12), FPS)
    cut = tmp_path / "cut.webm"
    cut.write_bytes(webm.read_bytes()[: webm.stat().st_size // 2])
    assert "truncated" in _one_line_error(capsys, ["video", str(cut), style, "-o", str(tmp_path / "o.mp4")])
    (tmp_path / "empty").mkdir()
    assert "no frames" in _one_line_error(capsys, ["video", str(tmp_path / "empty"), style, "-o", "o.mp4"])
    mixed = _folder(tmp_path / "mixed", [*_frames(2), _frames(1, (40, 64))[0]])
    assert "share one size" in _one_line_error(capsys, ["video", str(mixed), style, "-o", str(tmp_path / "o.mp4")])
    src = str(_clip(tmp_path / "in.mp4", _frames(2), audio=False))
    assert "unsupported video extension" in _one_line_error(capsys, ["video", src, style, "-o", "o.avi"])
    assert "no interrupted run" in _one_line_error(capsys, ["video", src, style, "-o", f"{tmp_path}/new/", "--resume"])
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "frame_000000.png").write_bytes(b"")
    assert "--resume" in _one_line_error(capsys, ["video", src, style, "-o", f"{tmp_path}/used/"])
    assert not list(tmp_path.glob("o.*")) and not list(Path.cwd().glob("o.mp4*"))


def test_a_full_disk_is_one_line_and_leaves_no_half_written_video(tmp_path, capsys, style_path, monkeypatch):
    source = str(_clip(tmp_path / "in.mp4", _frames(2)))
    out = tmp_path / "out.mp4"

    def full(temp: Path, *_) -> None:
        temp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(video_io, "_write_encoded", full)
    assert "disk full" in _one_line_error(capsys, ["video", source, str(style_path), "-o", str(out), *FAST])
    assert not out.exists() and not list(tmp_path.glob(".out.mp4*"))
    assert len(list((tmp_path / "out.mp4.frames").glob("frame_*.png"))) == 2  # kept: --resume encodes them
    monkeypatch.undo()
    assert main(["video", source, str(style_path), "-o", str(out), *FAST, "--resume"]) == 0
    assert video_io.probe(out)["frames"] == 2


def test_masks_follow_the_motion():
    from jnst.masks import GuidedMasks
    from jnst.video import _masks_along

    masks = np.zeros((2, 16, 32), np.float32)
    masks[0, :, 10:15], masks[1] = 1.0, 0.5
    backward = np.zeros((16, 32, 2), np.float32)
    backward[..., 0] = 3.0  # frame t's pixel x shows what frame t-1 shows at x + 3
    moved = _masks_along(GuidedMasks(masks, (np.ones((2, 8, 8), np.float32),)), backward)
    np.testing.assert_allclose(moved.content[0, :, 7:12], 1.0)
    assert moved.content[0, :, 12:].max() == 0.0 and moved.content[0, :, :7].max() == 0.0
    np.testing.assert_allclose(moved.content[1], 0.5)
    assert moved.style is not None and moved.style[0].shape == (2, 8, 8)  # the paintings' side stays


def test_masks_and_semantic_regions_work_on_a_clip(tmp_path, style_path, shared_images):
    from PIL import Image

    frames = _folder(tmp_path / "frames", _frames(3))
    left = np.zeros(HW, np.uint8)
    left[:, : HW[1] // 2] = 255
    Image.fromarray(left).save(tmp_path / "left.png")
    Image.fromarray(255 - left).save(tmp_path / "right.png")
    styles = [str(style_path), str(shared_images / "the_scream.jpg")]
    masks = ["--masks", str(tmp_path / "left.png"), str(tmp_path / "right.png")]
    assert main(["video", str(frames), *styles, "-o", str(tmp_path / "masked") + "/", *masks, *FAST]) == 0
    assert main(["video", str(frames), *styles, "-o", str(tmp_path / "semantic.gif"), "--semantic", "2", *FAST]) == 0
    assert (tmp_path / "semantic_regions.png").is_file()
    assert len(video_io.read(tmp_path / "semantic.gif", 64).frames) == 3
