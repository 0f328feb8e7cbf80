"""Inputs and outputs under abuse: the fuzzed corpus of tests/corpus.py as content, style, init
and mask; outputs that are inputs, concurrent writers, a full disk, damaged weights.

Every corpus file goes through the loading layer the CLI uses, in-process and under a time
limit; a handful go end to end through :func:`jnst.cli.main`, and one through a real process.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from corpus import EXTENSIONS, FORMATS, ORIENTATION, Case, encode, make_corpus
from PIL import Image
from test_cli import assert_one_line_error, run

from jnst import cli, compile_cache, images, weights

SEED = 10
CASE_LIMIT_S = 5.0  # one file in one role; the slowest takes about 0.05 s
HW = (48, 64)  # the content size the style, init and masks are fitted to
E2E_FLAGS = ["--size", "64", "--steps", "2", "--quiet"]

# What the CLI calls for each role of an input file (after images.check_image).
ROLES: dict[str, Callable[[Path], np.ndarray]] = {
    "content": lambda path: images.load_image(path, max(HW)),
    "init": lambda path: images.load_image(path, size=HW),
    "style": lambda path: images.load_style(path, HW),
    "mask": lambda path: images.load_masks([path], HW)[0],
    "mask map": lambda path: images.load_mask_map(path, HW, 2),
}
SHAPES = {"init": (*HW, 3), "mask": HW, "mask map": (2, *HW)}

# Where EXIF Orientation 1-8 puts stored pixel a[y, x] for display: d[r, c] = a[...].
UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),  # d[r, c] = a[c, r]
    6: lambda a: a[::-1].transpose(1, 0, 2),  # d[r, c] = a[H-1-c, r]: 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # d[r, c] = a[H-1-c, W-1-r]
    8: lambda a: a[:, ::-1].transpose(1, 0, 2),  # d[r, c] = a[c, W-1-r]: 90 degrees anticlockwise
}


@pytest.fixture(scope="module")
def corpus(shared_images: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    """The corpus, by file name."""
    return {case.path.name: case for case in make_corpus(SEED, tmp_path_factory.mktemp("corpus"), shared_images)}


class CaseTimeout(Exception):
    """A corpus file took longer than CASE_LIMIT_S to load: a hang in waiting."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise CaseTimeout in the block after ``seconds`` (SIGALRM: the main thread only)."""

    def expire(signum: int, frame: object) -> None:
        raise CaseTimeout(f"over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def array_problem(role: str, array: np.ndarray) -> str | None:
    """What is wrong with a role's loaded array, or None."""
    shape = SHAPES.get(role)
    if role in ("content", "style") and (array.ndim != 3 or array.shape[-1] != 3):
        return f"shape {array.shape}"
    if role == "content" and max(array.shape[:2]) != max(HW):
        return f"shape {array.shape}, long side not {max(HW)}"
    if shape is not None and array.shape != shape:
        return f"shape {array.shape}, not {shape}"
    if array.dtype != np.float32 or not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        return f"dtype {array.dtype}, range [{array.min()}, {array.max()}]"
    return None


def load_problem(case: Case, role: str) -> str | None:
    """Load ``case`` as the CLI would in ``role``; what went wrong, or None.

    Fine is a valid array or an ImageError with one line naming the file, as the case expects,
    within the time limit and without a warning.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with time_limit(CASE_LIMIT_S):
                images.check_image(case.path)
                array = ROLES[role](case.path)
        except images.ImageError as err:
            message = str(err)
            if "\n" in message or str(case.path) not in message:
                return f"bad message {message!r}"
            # A mask map must have one flat colour per style: most valid pictures are refused.
            if case.expect == "load" and role != "mask map":
                return f"valid file refused: {message}"
        except CaseTimeout as err:
            return f"took {err}"
        except Exception as err:  # anything else would be a traceback in the CLI
            return f"{type(err).__name__}: {err}"
        else:
            if case.expect == "refuse":
                return "loaded, but must be refused"
            problem = array_problem(role, array)
            if problem:
                return problem
    if caught:
        return f"warned: {'; '.join(str(w.message) for w in caught)}"
    return None


def test_corpus_is_big_varied_and_reproducible(corpus: dict[str, Case], shared_images: Path, tmp_path: Path) -> None:
    assert len(corpus) >= 200
    for fmt in FORMATS:
        kinds = {case.kind for case in corpus.values() if case.fmt == fmt}
        assert kinds == {"base", "truncated", "bitflip", "header", "oddity"}, fmt
    for case in corpus.values():
        with Image.open(case.path) if case.expect == "load" else contextlib.nullcontext() as img:
            assert img is None or img.format == case.fmt, case.path.name  # valid files are what they claim
    again = make_corpus(SEED, tmp_path, shared_images)
    assert [c.path.read_bytes() for c in again] == [corpus[c.path.name].path.read_bytes() for c in again]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_file_in_every_role_loads_or_is_refused_in_one_line(
    corpus: dict[str, Case], fmt: str, capfd: pytest.CaptureFixture[str]
) -> None:
    problems = [
        f"{case.path.name} as {role}: {problem}"
        for case in corpus.values()
        if case.fmt == fmt
        for role in ROLES
        if (problem := load_problem(case, role))
    ]
    assert not problems, "\n".join(problems)
    assert capfd.readouterr().err == ""  # nothing from the C libraries either (libtiff prints)


def test_valid_oddities_load_whole_and_upright(corpus: dict[str, Case]) -> None:
    valid = [case for case in corpus.values() if case.expect == "load"]
    assert {case.kind for case in valid} == {"base", "oddity"}
    for case in valid:
        image = images.load_image(case.path)
        assert image.shape == (*case.shape, 3), case.path.name


def test_exif_orientations(tmp_path: Path) -> None:
    """Each of the 8 orientations, in each format that carries EXIF, loads as the viewer shows it."""
    stored = np.random.default_rng(SEED).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    blocks = np.kron(stored, np.ones((16, 16, 1), np.uint8))  # flat 16 px blocks survive JPEG
    for orientation, upright in UPRIGHT.items():
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        for fmt, pixels, options in [
            ("PNG", stored, {}),
            ("TIFF", stored, {}),
            ("WEBP", stored, {"lossless": True}),
            ("JPEG", blocks, {"quality": 95, "subsampling": 0}),
        ]:
            path = tmp_path / f"o{orientation}.{EXTENSIONS[fmt]}"
            path.write_bytes(encode(Image.fromarray(pixels), fmt, exif=exif, **options))
            loaded = images.to_uint8(images.load_image(path)).astype(int)
            expected = upright(pixels).astype(int)
            assert loaded.shape == expected.shape, path.name
            assert np.abs(loaded - expected).mean() < (3 if fmt == "JPEG" else 0.5), path.name


# --- end to end: a few corpus files through the CLI ------------------------------------------------

# (role, corpus file, what the error line says): each refused in one line, exit 2, nothing
# written.  Most pass the cheap header check and fail only when decoded, after the weights load.
BROKEN_RUNS = [
    ("content", "png_header_idat_not_zlib.png", "{path}: truncated or corrupt image"),
    ("content", "tiff_header_width_0.tif", "{path}: not an image"),
    ("style", "gif_header_lzw_size_12.gif", "{path}: truncated or corrupt image"),
    ("style", "webp_header_vp8x_canvas_2p24.webp", "{path}: image too large"),
    ("mask", "tiff_header_compression_lzw_on_raw.tif", "{path}: truncated or corrupt image"),
    ("mask map", "webp_header_vp8l_1x1.webp", "{path}: truncated or corrupt image"),
    ("init", "jpeg_header_sampling_5x5.jpg", "{path}: truncated or corrupt image"),
    # Valid, but 1 x 10000 px makes a 64 x 1 px content, too thin for VGG19's pooling layers.
    ("content", "png_oddity_1x10000_png.png", "content image is 64x1; its layers need at least 8 px"),
]


def stylize_argv(content: Path, style: Path, out: Path, role: str = "", path: Path | None = None) -> list[object]:
    """``jnst stylize`` arguments with ``path`` in ``role`` (content, style, mask, mask map, init)."""
    content, style = (path if role == "content" else content), (path if role == "style" else style)
    flags = {"mask": ["--masks", path], "mask map": ["--mask-map", path], "init": ["--init", path]}.get(role, [])
    return ["stylize", content, style, "-o", out, *E2E_FLAGS, *flags]


@pytest.fixture
def no_compile_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process runs keep compiled programs in memory only, not in the user's cache."""
    monkeypatch.setattr(compile_cache, "enable", lambda environ=None: None)


@pytest.mark.parametrize(("role", "name", "expected"), BROKEN_RUNS)
def test_broken_file_through_the_cli(
    corpus: dict[str, Case], role: str, name: str, expected: str, capfd, tmp_path: Path, no_compile_cache
) -> None:
    out = tmp_path / "out.png"
    code = cli.main([str(a) for a in stylize_argv(*base_pair(corpus), out, role, corpus[name].path)])
    stdout, stderr = capfd.readouterr()
    assert_one_line_error(code, stderr, expected.format(path=corpus[name].path))
    assert stdout == ""
    assert list(tmp_path.iterdir()) == []


def base_pair(corpus: dict[str, Case]) -> tuple[Path, Path]:
    """A valid content and style from the corpus."""
    return corpus["jpeg_base_2.jpg"].path, corpus["png_base_0.png"].path


@pytest.mark.parametrize(
    ("content", "style", "mask"),
    [
        ("jpeg_oddity_cmyk.jpg", "gif_oddity_animated_gif.gif", "png_oddity_16bit_gray_alpha.png"),
        ("png_oddity_16bit_rgb.png", "webp_oddity_exif_orientation_8.webp", "tiff_oddity_palette_tiff.tif"),
    ],
)
def test_valid_oddities_stylize(
    corpus: dict[str, Case], content: str, style: str, mask: str, capsys, tmp_path: Path, no_compile_cache
) -> None:
    """Both runs have a 64 x 43 content and one masked style: the second reuses the first's programs."""
    out = tmp_path / "out.png"
    content_path, style_path, mask_path = (corpus[name].path for name in (content, style, mask))
    code, stdout, stderr = run(capsys, "stylize", content_path, style_path, "-o", out, *E2E_FLAGS, "--masks", mask_path)
    assert code == 0, stderr
    assert stdout.startswith(f"wrote {out} (64x43, ")
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (64, 43)


def test_broken_file_in_a_real_process(corpus: dict[str, Case], tmp_path: Path) -> None:
    """The process's exit code and its whole stderr, libtiff's own output included."""
    broken = corpus["tiff_header_compression_lzw_on_raw.tif"].path
    out = tmp_path / "out.png"
    argv = [sys.executable, "-m", "jnst", *map(str, stylize_argv(*base_pair(corpus), out, "content", broken))]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc.returncode, proc.stderr, f"{broken}: truncated or corrupt image")
    assert proc.stdout == ""
    assert not out.exists()


@pytest.mark.parametrize("damage", ["truncated", "bit flipped", "an image"])
def test_damaged_shipped_weights_through_the_cli(
    corpus: dict[str, Case], damage: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = bytearray(weights.default_path().read_bytes())
    if damage == "truncated":
        del data[len(data) * 2 // 3 :]
    elif damage == "bit flipped":
        data[len(data) // 2] ^= 0x10
    else:
        data = bytearray(corpus["png_base_1.png"].path.read_bytes())
    bad = tmp_path / "weights.npz"
    bad.write_bytes(data)
    out = tmp_path / "out.png"
    code, stdout, stderr = run(capsys, *stylize_argv(*base_pair(corpus), out), "--weights", bad)
    assert_one_line_error(code, stderr, f"{bad}: ")
    assert stdout == "" and not out.exists()


# --- outputs ------------------------------------------------------------------------------------


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    """Content, two styles, a mask and an init image, as small PNG files."""
    rng = np.random.default_rng(SEED)
    paths = {}
    for name in ("content", "style", "style2", "mask", "init"):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(paths[name])
    return paths


def output_for(inputs: dict[str, Path], how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A path for the output that names one of the inputs."""
    if how == "relative path":
        monkeypatch.chdir(tmp_path / "sub")
        return Path("..") / inputs["content"].name
    if how in ("symlink", "hard link"):
        link = tmp_path / "sub" / "link.png"
        (link.symlink_to if how == "symlink" else link.hardlink_to)(inputs["style2"])
        return link
    return inputs[how]


@pytest.mark.parametrize("how", ["content", "style", "style2", "mask", "init", "relative path", "symlink", "hard link"])
def test_output_that_is_an_input_is_refused(
    inputs: dict[str, Path], how: str, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    out = output_for(inputs, how, tmp_path, monkeypatch)
    before = {path: path.read_bytes() for path in inputs.values()}
    argv = ["stylize", inputs["content"], inputs["style"], inputs["style2"], "-o", out, *E2E_FLAGS]
    argv += ["--masks", inputs["mask"], inputs["mask"], "--init", inputs["init"]]
    code, stdout, stderr = run(capsys, *argv)
    assert_one_line_error(code, stderr, f"{out}: is also an input image")
    assert {path: path.read_bytes() for path in inputs.values()} == before


def test_folder_output_that_would_overwrite_a_content_is_refused(inputs: dict[str, Path], capsys) -> None:
    before = inputs["content"].read_bytes()
    folder = f"{inputs['content'].parent}{os.sep}"
    code, _, stderr = run(capsys, "stylize", inputs["content"], "--style", inputs["style"], "-o", folder, *E2E_FLAGS)
    assert_one_line_error(code, stderr, f"{inputs['content']}: is also an input image")
    assert inputs["content"].read_bytes() == before


def test_concurrent_writers_leave_one_whole_image(tmp_path: Path) -> None:
    """Two writers replace one output over and over while a reader watches: the reader only ever
    sees one of the two images whole, and so does whoever reads it at the end."""
    out = tmp_path / "out.png"
    rng = np.random.default_rng(SEED)
    pictures = [rng.random((192, 256, 3), dtype=np.float32) for _ in range(2)]
    expected = [images.to_uint8(picture) for picture in pictures]
    done = threading.Event()
    seen: list[np.ndarray] = []
    damaged: list[str] = []

    def write(picture: np.ndarray) -> None:
        for _ in range(12):
            images.save_image(picture, out)

    def read() -> None:
        while not done.is_set():
            try:
                with Image.open(out) as img:
                    seen.append(np.asarray(img.convert("RGB")))
            except FileNotFoundError:
                continue
            except Exception as err:  # a partial or mixed file
                damaged.append(f"{type(err).__name__}: {err}")

    threads = [threading.Thread(target=write, args=(picture,)) for picture in pictures]
    reader = threading.Thread(target=read)
    for thread in [reader, *threads]:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    assert not damaged
    assert seen and all(any(np.array_equal(s, e) for e in expected) for s in seen)
    final = np.asarray(Image.open(out).convert("RGB"))
    assert any(np.array_equal(final, e) for e in expected)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temporary file left


# ``jnst ARGV`` in a process that may not write files past LIMIT bytes.  Python ignores SIGXFSZ,
# so a write past the limit fails with EFBIG, as one on a full disk fails with ENOSPC.
FILE_SIZE_LIMITED_JNST = """
import resource, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
from jnst.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE")
def test_full_disk_is_one_line_and_keeps_the_old_output(tmp_path: Path) -> None:
    """``jnst samples`` (a 3 KB content image first) with room for 1 KB: the older output stays."""
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(content)
    before = content.read_bytes()
    proc = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMITED_JNST, "1024", "samples", str(content), str(style)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert_one_line_error(proc.returncode, proc.stderr, f"{content}: cannot save: disk full or file size limit")
    assert content.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["content.png"]  # no temporary file, no style
