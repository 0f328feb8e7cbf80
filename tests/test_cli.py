"""The ``jnst`` command line: end to end runs, one-line errors with exit code 2, Ctrl-C.

Most tests call :func:`jnst.cli.main` in-process (the VGG model and compiled chunks are then
shared between runs); only ``--help``, the console script's exit code and Ctrl-C use a real
process.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jnst import cli, images
from jnst.vgg import LAYERS

# The modules themselves: ``jnst.stylize`` is the function that jnst/__init__.py re-exports.
# Imported here, so that the timing of the bad-input checks leaves the import out.
stylize_module = importlib.import_module("jnst.stylize")
weights_module = importlib.import_module("jnst.weights")

SIZE = 48
STEPS = 4
FAST_FAIL_S = 5.0  # a bad input must be refused this fast: before any optimisation
JNST_SCRIPT = Path(sys.executable).with_name("jnst")


def run(capsys, *argv) -> tuple[int, str, str]:
    """``jnst ARGV`` in-process: exit code, stdout, stderr."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> str:
    """Exit code 2 and exactly one line "jnst: error: ..." on stderr, with each fragment in it."""
    assert code == cli.EXIT_USAGE, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("jnst: error: "), err
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def assert_valid_image(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img.verify()
    img = Image.open(path)
    img.load()
    return img


@pytest.fixture(scope="module")
def pair(shared_images) -> tuple[Path, Path]:
    return shared_images / "tubingen.jpg", shared_images / "starry_night.jpg"


@pytest.fixture(scope="module")
def expected_wh(pair) -> tuple[int, int]:
    with Image.open(pair[0]) as img:
        height, width = images.fit_long_side((img.height, img.width), SIZE)
    return width, height


@pytest.fixture(scope="module")
def png_run(pair, tmp_path_factory):
    """The one full PNG run with snapshots, shared by the end-to-end tests."""
    out = tmp_path_factory.mktemp("png_run") / "out.png"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.main(
            ["stylize", *map(str, pair), "-o", str(out), "--size", str(SIZE), "--steps", str(STEPS)]
            + ["--snapshot-every", "2", "--quiet"]
        )
    return code, stdout.getvalue(), stderr.getvalue(), out


@pytest.fixture
def no_stylize(monkeypatch):
    """Fail the test if the optimisation starts (AssertionError is not one the CLI turns into exit 2)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("stylize was called: the bad input was not caught before the computation")

    monkeypatch.setattr(stylize_module, "stylize", forbidden)


# --- end to end -------------------------------------------------------------------------------


def test_stylize_writes_png_of_the_requested_size(png_run, expected_wh):
    code, stdout, stderr, out = png_run
    assert code == 0, stderr
    assert "Traceback" not in stderr and "jnst: error" not in stderr
    img = assert_valid_image(out)
    assert img.format == "PNG"
    assert img.size == expected_wh and max(img.size) == SIZE
    lines = stdout.splitlines()
    assert lines[0].startswith(f"wrote {out} ({expected_wh[0]}x{expected_wh[1]}, {STEPS} steps in ")
    assert "final loss" in lines[0]


def test_snapshots_and_contact_sheet(png_run, expected_wh):
    code, stdout, stderr, out = png_run
    assert code == 0, stderr
    folder = out.with_name("out_snapshots")
    assert f"snapshots and contact sheet in {folder}" in stdout
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["contact_sheet.png", "step_00000.png", "step_00002.png", "step_00004.png"]
    for name in names[1:]:
        assert assert_valid_image(folder / name).size == expected_wh
    # The last snapshot is the output image itself.
    np.testing.assert_array_equal(np.asarray(Image.open(folder / "step_00004.png")), np.asarray(Image.open(out)))
    sheet = assert_valid_image(folder / "contact_sheet.png")
    assert sheet.width > 2 * expected_wh[0] and sheet.height > 2 * expected_wh[1]  # a 2x2 grid of 3 images


def test_jpeg_output_by_extension(capsys, pair, tmp_path, expected_wh):
    out = tmp_path / "out.jpg"
    code, stdout, stderr = run(capsys, "stylize", *pair, "-o", out, "--size", SIZE, "--steps", 2, "--quiet")
    assert code == 0, stderr
    img = assert_valid_image(out)
    assert img.format == "JPEG" and img.size == expected_wh
    assert stdout.startswith(f"wrote {out} (")
    assert not list(tmp_path.glob(".*.tmp"))


# --- bad input: one line, exit 2, nothing written, found fast ----------------------------------


def _bomb_png(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims width x height (CRC fixed, so only the size is wrong)."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:20] = width.to_bytes(4, "big")
    data[20:24] = height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    return path


def _truncated_jpeg(path: Path, source: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _corrupt(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


def _text(path: Path) -> Path:
    path.write_text("not an image\n")
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


# id -> (how to build (content, style, output, extra flags) from (inputs folder, output folder,
# content, style)), what the one error line must contain).  {path} is the bad file's path.
def _three_colours(path: Path) -> Path:
    pixels = np.zeros((8, 9, 3), np.uint8)
    pixels[:, 3:6] = (255, 0, 0)
    pixels[:, 6:] = (0, 0, 255)
    Image.fromarray(pixels).save(path)
    return path


BAD_INPUTS = {
    "missing content": (lambda d, o, c, s: (d / "missing.jpg", s, o / "out.png", []), "{path}: no such file"),
    "directory as content": (lambda d, o, c, s: (d, s, o / "out.png", []), "{path}: is a directory"),
    "text file as style": (lambda d, o, c, s: (c, _text(d / "notes.png"), o / "out.png", []), "{path}: not an image"),
    "zero-byte image": (lambda d, o, c, s: (_empty(d / "empty.jpg"), s, o / "out.png", []), "{path}: empty file"),
    "truncated jpeg": (
        lambda d, o, c, s: (_truncated_jpeg(d / "half.jpg", c), s, o / "out.png", []),
        "{path}: truncated or corrupt image",
    ),
    "decompression bomb": (
        lambda d, o, c, s: (c, _bomb_png(d / "bomb.png", 20000, 20000), o / "out.png", []),
        "decompression bomb",
    ),
    "over jnst's pixel limit": (
        lambda d, o, c, s: (_bomb_png(d / "big.png", 12000, 12000), s, o / "out.png", []),
        "{path}: image too large (144000000 pixels",
    ),
    "output folder missing": (lambda d, o, c, s: (c, s, o / "nope" / "out.png", []), "does not exist"),
    "output extension": (lambda d, o, c, s: (c, s, o / "out.xyz", []), "unsupported output extension '.xyz'"),
    "output is a directory": (lambda d, o, c, s: (c, s, _folder(d / "x.png"), []), "{path}: is a directory"),
    "size 0": (lambda d, o, c, s: (c, s, o / "out.png", ["--size", "0"]), "--size"),
    "size -5": (lambda d, o, c, s: (c, s, o / "out.png", ["--size", "-5"]), "--size"),
    "steps 0": (lambda d, o, c, s: (c, s, o / "out.png", ["--steps", "0"]), "--steps"),
    "steps abc": (lambda d, o, c, s: (c, s, o / "out.png", ["--steps", "abc"]), "--steps"),
    "lr 0": (lambda d, o, c, s: (c, s, o / "out.png", ["--lr", "0"]), "--lr"),
    "lr nan": (lambda d, o, c, s: (c, s, o / "out.png", ["--lr", "nan"]), "--lr"),
    "content weight -1": (lambda d, o, c, s: (c, s, o / "out.png", ["--content-weight", "-1"]), "--content-weight"),
    "style weight inf": (lambda d, o, c, s: (c, s, o / "out.png", ["--style-weight", "inf"]), "--style-weight"),
    "unknown preset": (lambda d, o, c, s: (c, s, o / "out.png", ["--preset", "nope"]), "--preset"),
    "unknown init": (lambda d, o, c, s: (c, s, o / "out.png", ["--init", "nope"]), "--init"),
    "corrupt weights": (
        lambda d, o, c, s: (c, s, o / "out.png", ["--weights", str(_corrupt(d / "bad.npz"))]),
        "{path}: not a readable jnst weights file",
    ),
    "missing weights": (
        lambda d, o, c, s: (c, s, o / "out.png", ["--weights", str(d / "none.npz")]),
        "{path}: no such weights file",
    ),
    "truncated jpeg, with snapshots": (
        lambda d, o, c, s: (_truncated_jpeg(d / "half.jpg", c), s, o / "out.png", ["--snapshot-every", "1"]),
        "{path}: truncated or corrupt image",
    ),
    "corrupt weights, with snapshots": (
        lambda d, o, c, s: (c, s, o / "out.png", ["--snapshot-every", "1", "--weights", str(_corrupt(d / "w.npz"))]),
        "{path}: not a readable jnst weights file",
    ),
    "blend weight count": (
        lambda d, o, c, s: (c, s, o / "out.png", ["--style-blend", "1", "2"]),
        "--style-blend has 2 weights for 1 style images",
    ),
    "mask count": (
        lambda d, o, c, s: (c, s, o / "out.png", ["--masks", str(c), str(c)]),
        "--masks has 2 files for 1 style images",
    ),
    "mask map colours": (
        lambda d, o, c, s: (c, s, o / "out.png", ["--mask-map", str(_three_colours(d / "map.png"))]),
        "{path}: mask map has 3 colours, expected one per style (1)",
    ),
    "unknown layer": (lambda d, o, c, s: (c, s, o / "out.png", ["--content-layers", "block9_conv1"]), "unknown VGG19"),
    "bad layer weight": (
        lambda d, o, c, s: (c, s, o / "out.png", ["--style-layers", "block1_conv1:x"]),
        "bad layer weight in 'block1_conv1:x'",
    ),
    "bad scales": (lambda d, o, c, s: (c, s, o / "out.png", ["--scales", "abc"]), "--scales takes 'auto'"),
    "ema 1": (lambda d, o, c, s: (c, s, o / "out.png", ["--ema", "1"]), "ema must be in [0, 1)"),
    "snapshot folder is a file": (
        lambda d, o, c, s: (c, s, o / "out.png", ["--snapshot-every", "1", "--snapshot-dir", str(_text(d / "f"))]),
        "{path}: cannot create snapshot folder",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_nothing_written(case, capsys, pair, tmp_path, no_stylize):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    build, expected = BAD_INPUTS[case]
    content, style, out, flags = build(inputs, outputs, *pair)
    bad = next((Path(f) for f in flags if f.startswith(str(inputs))), None)
    bad = bad or next(p for p in (content, style, out) if p not in pair)
    start = time.perf_counter()
    code, stdout, stderr = run(capsys, "stylize", content, style, "-o", out, "--size", SIZE, "--quiet", *flags)
    seconds = time.perf_counter() - start
    assert_one_line_error(code, stderr, expected.format(path=bad))
    assert stdout == ""
    assert not out.exists() or out.is_dir()
    assert list(outputs.iterdir()) == []  # no output, no temporary file left behind
    assert seconds < FAST_FAIL_S


def test_bad_output_folder_is_found_before_loading_anything(capsys, pair, tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("called before the output was checked")

    monkeypatch.setattr(stylize_module, "stylize", forbidden)
    monkeypatch.setattr(weights_module, "load", forbidden)
    monkeypatch.setattr(images, "load_image", forbidden)
    code, _, stderr = run(capsys, "stylize", *pair, "-o", tmp_path / "missing" / "out.png", "--quiet")
    assert_one_line_error(code, stderr, "does not exist")


def test_missing_output_flag(capsys, pair, no_stylize):
    code, _, stderr = run(capsys, "stylize", *pair)
    assert_one_line_error(code, stderr, "-o/--output")


@pytest.mark.parametrize("problem", ["text style", "truncated content"])
def test_existing_output_survives_a_failed_run(problem, capsys, pair, tmp_path, no_stylize):
    out = tmp_path / "out.png"
    Image.new("RGB", (5, 4), (200, 10, 10)).save(out)
    before = out.read_bytes()
    content, style = pair
    if problem == "text style":
        style = _text(tmp_path / "style.png")
    else:
        content = _truncated_jpeg(tmp_path / "half.jpg", content)
    code, _, stderr = run(capsys, "stylize", content, style, "-o", out, "--size", SIZE, "--quiet")
    assert_one_line_error(code, stderr)
    assert out.read_bytes() == before
    assert {p.name for p in tmp_path.iterdir()} <= {"out.png", Path(content).name, Path(style).name}


# --- the other commands ------------------------------------------------------------------------


def test_presets(capsys):
    code, stdout, _ = run(capsys, "presets")
    assert code == 0
    assert re.search(r"^seed: ", stdout, re.M) and re.search(r"^default: ", stdout, re.M)


def test_layers(capsys):
    code, stdout, _ = run(capsys, "layers")
    assert code == 0
    names = stdout.splitlines()[1:]
    assert names == list(LAYERS)
    assert names[0] == "block1_conv1" and names[-1] == "block5_pool"


def test_samples_writes_two_images(capsys, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    code, stdout, stderr = run(capsys, "samples", a, b)
    assert code == 0, stderr
    assert stdout.strip() == f"wrote {a} and {b}"
    for path in (a, b):
        img = assert_valid_image(path)
        assert img.format == "PNG" and img.mode == "RGB"


def test_samples_bad_output_writes_nothing(capsys, tmp_path):
    a = tmp_path / "a.png"
    code, _, stderr = run(capsys, "samples", a, tmp_path / "b.xyz")
    assert_one_line_error(code, stderr, "b.xyz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make", [_corrupt, _empty, _text])
def test_convert_corrupt_file(make, capsys, tmp_path):
    source = make(tmp_path / "vgg19.pth")
    destination = tmp_path / "out.npz"
    code, stdout, stderr = run(capsys, "convert", source, destination)
    assert_one_line_error(code, stderr, str(source))
    assert stdout == ""
    assert not destination.exists()


def test_convert_missing_file(capsys, tmp_path):
    code, _, stderr = run(capsys, "convert", tmp_path / "none.h5", tmp_path / "out.npz")
    assert_one_line_error(code, stderr, f"{tmp_path / 'none.h5'}: no such file")


def test_no_command(capsys):
    code, _, stderr = run(capsys)
    assert_one_line_error(code, stderr)


# --- real processes ----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["python -m jnst", "jnst"])
def test_help(how):
    if how == "jnst" and not JNST_SCRIPT.exists():
        pytest.skip(f"no console script at {JNST_SCRIPT}")
    argv = [sys.executable, "-m", "jnst"] if how == "python -m jnst" else [str(JNST_SCRIPT)]
    proc = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: jnst")
    for command in ("stylize", "convert", "samples", "presets", "layers"):
        assert command in proc.stdout


def test_console_script_exit_code(tmp_path):
    if not JNST_SCRIPT.exists():
        pytest.skip(f"no console script at {JNST_SCRIPT}")
    missing = tmp_path / "missing.jpg"
    proc = subprocess.run(
        [str(JNST_SCRIPT), "stylize", str(missing), str(missing), "-o", str(tmp_path / "out.png")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_one_line_error(proc.returncode, proc.stderr, f"{missing}: no such file")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_writes_the_image_so_far(pair, tmp_path):
    out = tmp_path / "out.png"
    snapshots = tmp_path / "snaps"
    # A snapshot every step: each chunk is a single compiled step, so steps come quickly, and the
    # snapshot files show from outside how far the run got.
    argv = [sys.executable, "-m", "jnst", "stylize", *map(str, pair), "-o", str(out)]
    argv += ["--steps", "2000", "--size", "48", "--snapshot-every", "1", "--snapshot-dir", str(snapshots)]
    # A child started with SIGINT ignored (as in a background job) would never see Ctrl-C.
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with open(tmp_path / "stdout", "wb") as stdout, open(tmp_path / "stderr", "wb") as stderr:
            proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, cwd=tmp_path)
    finally:
        if previous == signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)
    try:
        deadline = time.monotonic() + 120
        while not (snapshots / "step_00002.png").exists():
            assert proc.poll() is None, (tmp_path / "stderr").read_text(errors="replace")
            assert time.monotonic() < deadline, "no progress after 120 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = (tmp_path / "stderr").read_text(errors="replace")
    assert code == cli.EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr
    match = re.search(r"^jnst: interrupted at step (\d+); wrote (.+)$", stderr.replace("\r", "\n"), re.M)
    assert match, stderr
    step = int(match.group(1))
    assert 2 <= step < 2000
    assert match.group(2) == str(out)
    img = assert_valid_image(out)
    assert max(img.size) == 48
    # The image written is the one reached at that step.
    snapshot = snapshots / f"step_{step:05d}.png"
    if snapshot.exists():
        np.testing.assert_array_equal(np.asarray(img), np.asarray(Image.open(snapshot)))
    assert not list(tmp_path.glob(".*.tmp"))


def test_two_styles_with_mask_map_colour_and_scales(capsys, pair, tmp_path, expected_wh):
    content, style = pair
    regions = np.zeros((6, 8, 3), np.uint8)
    regions[:, 4:] = 255
    Image.fromarray(regions).save(tmp_path / "map.png")
    out = tmp_path / "out.png"
    code, stdout, stderr = run(
        capsys,
        "stylize",
        content,
        style,
        "--style",
        content,
        "--mask-map",
        tmp_path / "map.png",
        "--color",
        "luminance",
        "--optimizer",
        "lbfgs",
        "--scales",
        "32",
        "-o",
        out,
        "--size",
        SIZE,
        "--steps",
        STEPS,
        "--quiet",
    )
    assert code == 0, stderr
    assert assert_valid_image(out).size == expected_wh
