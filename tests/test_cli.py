"""The ``jnst`` command line: end to end runs, one-line errors with exit code 2, Ctrl-C.

Most tests call :func:`jnst.cli.main` in-process (the VGG model and compiled chunks are then
shared between runs); only ``--help``, the console script's exit code and Ctrl-C use a real
process.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.experimental.compilation_cache import compilation_cache
from PIL import Image

from jnst import cli, compile_cache, images, plot, presets
from jnst import config as config_lib
from jnst.cli.parser import build_parser, init_file, style_config
from jnst.vgg import LAYERS

# The modules themselves: ``jnst.stylize`` is the function that jnst/__init__.py re-exports.
# Imported here, so that the timing of the bad-input checks leaves the import out.
stylize_module = importlib.import_module("jnst.stylize")
weights_module = importlib.import_module("jnst.weights")

SIZE = 48
STEPS = 4
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


CACHE_FLAGS = (
    "jax_compilation_cache_dir",
    "jax_enable_compilation_cache",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
)


def cache_settings() -> dict[str, object]:
    return {flag: getattr(jax.config, flag) for flag in CACHE_FLAGS}


def restore_cache_settings(settings: dict[str, object]) -> None:
    for flag, value in settings.items():
        jax.config.update(flag, value)
    compilation_cache.reset_cache()


@pytest.fixture(scope="module", autouse=True)
def compilation_cache_in_tmp(tmp_path_factory):
    """The in-process runs' persistent compilation cache goes to a temporary folder, not the
    user's; afterwards JAX's cache settings are put back, so later test modules run without it."""
    before = cache_settings()
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
        mp.setenv("JNST_CACHE_DIR", str(tmp_path_factory.mktemp("jax_cache")))
        yield
    restore_cache_settings(before)


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
    assert f"snapshots, contact sheet and loss curve in {folder}" in stdout
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "contact_sheet.png", "latest.png", "loss_curve.png", "step_00000.png", "step_00002.png", "step_00004.png"
    ]  # fmt: skip
    for name in names[3:]:
        assert assert_valid_image(folder / name).size == expected_wh
    # The last snapshot, and the image that follows every chunk, are the output image itself.
    for name in ("step_00004.png", "latest.png"):
        np.testing.assert_array_equal(np.asarray(Image.open(folder / name)), np.asarray(Image.open(out)))
    sheet = assert_valid_image(folder / "contact_sheet.png")
    assert sheet.width > 2 * expected_wh[0] and sheet.height > 2 * expected_wh[1]  # a 2x2 grid of 3 images


def test_loss_curve_beside_the_snapshots(png_run):
    code, _, stderr, out = png_run
    assert code == 0, stderr
    curve = assert_valid_image(out.with_name("out_snapshots") / "loss_curve.png")
    assert curve.format == "PNG" and curve.size == (640, 360)
    drawn = (np.asarray(curve.convert("RGB")) == plot.SERIES_COLORS["total"]).all(axis=-1)
    assert drawn.sum() > 20  # the total loss is plotted, not just the axes


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
    "unknown init": (lambda d, o, c, s: (c, s, o / "out.png", ["--init", "nope"]), "--init nope: no such file"),
    "missing init file": (
        lambda d, o, c, s: (c, s, o / "out.png", ["--init", str(d / "missing.png")]),
        "--init {path}: no such file",
    ),
    "text init file": (
        lambda d, o, c, s: (c, s, o / "out.png", ["--init", str(_text(d / "init.png"))]),
        "{path}: not an image",
    ),
    "truncated init file": (
        lambda d, o, c, s: (c, s, o / "out.png", ["--init", str(_truncated_jpeg(d / "init.jpg", c))]),
        "{path}: truncated or corrupt image",
    ),
    "truncated init file, with snapshots": (
        lambda d, o, c, s: (
            c,
            s,
            o / "out.png",
            ["--snapshot-every", "1", "--init", str(_truncated_jpeg(d / "i.jpg", c))],
        ),
        "{path}: truncated or corrupt image",
    ),
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
    code, stdout, stderr = run(capsys, "stylize", content, style, "-o", out, "--size", SIZE, "--quiet", *flags)
    assert_one_line_error(code, stderr, expected.format(path=bad))
    assert stdout == ""
    assert not out.exists() or out.is_dir()
    assert list(outputs.iterdir()) == []  # no output, no temporary file left behind


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


def presets_rows(stdout: str) -> dict[str, tuple[list[str], str]]:
    """``jnst presets``'s table: name -> (its differences from default, one a line; its description)."""
    header, rule, *lines = stdout.splitlines()
    diff_at, doc_at = header.index("differs from default"), header.index("what it is")
    assert set(rule) == {"-", " "}
    rows: dict[str, tuple[list[str], str]] = {}
    for line in lines:
        if not line.strip():
            continue
        if not line.startswith(" "):
            name = line[:diff_at].strip()
            rows[name] = ([], "")
        diffs, doc = rows[name]
        cell = line[diff_at:doc_at].strip()
        rows[name] = (diffs + [cell] if cell else diffs, f"{doc} {line[doc_at:].strip()}".strip())
    return rows


def test_presets_table(capsys):
    code, stdout, _ = run(capsys, "presets")
    assert code == 0
    rows = presets_rows(stdout)
    assert list(rows) == list(config_lib.PRESETS)
    assert rows["default"][0] == ["\N{EM DASH}"]
    assert "steps=3001" in rows["seed"][0] and "optimizer=adam" in rows["seed"][0]
    for name, (_, doc) in config_lib.PRESETS.items():
        assert rows[name][1] == " ".join(doc.split())  # the whole description, wrapped
    assert "StyleConfig(" not in stdout
    assert max(map(len, stdout.splitlines())) <= 100  # the seed's long layer list wraps too


def test_preset_differences():
    assert presets.differences("default") == []
    seed = presets.differences("seed")
    assert seed[0] == "steps=3001" and "optimizer=adam" in seed and "learning_rate=0.02" in seed
    assert "init=content+noise" in seed
    # Fields equal to the default's are left out.
    assert "content_layers=block5_conv4" in " ".join(seed)  # the seed's content layer differs
    assert not any(d.startswith(("pooling=", "optimizer=lbfgs")) for d in seed)


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


# --- stylize's help and flags ------------------------------------------------------------------

HELP_GROUPS = {
    "inputs": [
        "CONTENT",
        "STYLE",
        "--style",
        "--masks",
        "--mask-map",
        "--style-masks",
        "--style-mask-map",
        "--semantic",
        "--init",
        "--weights",
    ],
    "look": [
        "--preset",
        "--content-weight",
        "--style-weight",
        "--style-balance",
        "--tv-weight",
        "--style-blend",
        "--sweep",
        "--style-scale",
        "--color",
        "--style-loss",
        "--content-layers",
        "--style-layers",
        "--pooling",
        "--padding",
        "--loss-norm",
    ],
    "optimisation": [
        "--steps",
        "--optimizer",
        "--lr",
        "--ema",
        "--scales",
        "--scale-start",
        "--scale-factor",
        "--pass-ratio",
        "--max-step",
        "--seed",
    ],
    "devices and hosts": [
        "--shard",
        "--devices",
        "--dtype",
        "--tile",
        "--max-memory",
        "--dry-run",
        "--distributed",
        "--coordinator",
        "--num-processes",
        "--process-id",
    ],
    "output": ["-o", "--size", "--snapshot-every", "--snapshot-dir", "--quiet"],
    "long runs": ["--checkpoint-every", "--resume", "--keep-checkpoint"],
}


def stylize_help(capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["stylize", "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def help_sections(text: str) -> dict[str, list[str]]:
    """Section title -> the first word of each entry under it (a flag or a positional's name)."""
    sections: dict[str, list[str]] = {}
    title = None
    for line in text.splitlines():
        if re.match(r"^\S.*:$", line):
            title = line[:-1]
            sections[title] = []
        elif title and re.match(r"^  \S", line):
            sections[title].append(line.split()[0].rstrip(","))
    return sections


def test_stylize_help_is_grouped_by_purpose(capsys, monkeypatch):
    sections = help_sections(stylize_help(capsys, monkeypatch))
    assert [t for t in sections if t in HELP_GROUPS] == list(HELP_GROUPS)  # in this order
    for title, entries in HELP_GROUPS.items():
        assert sections[title] == entries, title
    assert sections["options"] == ["-h"]


def test_stylize_help_metavars_are_readable(capsys, monkeypatch):
    text = stylize_help(capsys, monkeypatch)
    assert "MORE_STYLES" not in text and "STYLE_BLEND" not in text
    # No flag shows its own name in capitals as its metavar (argparse's default).
    for flag, metavar in re.findall(r"(--[a-z-]+) ([A-Z_]+)\b", text):
        assert metavar != flag[2:].upper().replace("-", "_"), flag
    for shown in ["--masks FILE", "--init {content,noise,content+noise}|FILE", "--steps N", "--size PX"]:
        assert shown in text
    for shown in ["--content-weight WEIGHT", "--style-blend W", "--ema DECAY", "--content-layers LAYER[:W]"]:
        assert shown in text
    assert "--padding {zero,reflect,replicate}" in text


def parse_config(*argv: str):
    args = build_parser().parse_args(["stylize", "c.png", "s.png", "-o", "out.png", *argv])
    return args, style_config(args)


def test_every_flag_reaches_the_config():
    args, cfg = parse_config(
        *("--style", "s2.png", "--style-blend", "0.7", "0.3", "--style-scale", "0.5"),
        *("--content-weight", "5", "--style-weight", "0.5", "--tv-weight", "0.1", "--color", "luminance"),
        *("--style-loss", "wasserstein", "--content-layers", "block4_conv2", "--style-layers", "block1_conv1:0.5"),
        *("--pooling", "avg", "--padding", "reflect", "--steps", "7", "--optimizer", "adam", "--lr", "0.1"),
        *("--ema", "0.5", "--scales", "256", "128", "--seed", "3", "--init", "noise", "--snapshot-every", "2"),
        *("--preset", "quality", "--size", "64", "--quiet", "--weights", "w.npz", "--snapshot-dir", "snaps"),
        *("--loss-norm", "target", "--pass-ratio", "1.5", "--max-step", "0.1", "--dtype", "bfloat16"),
    )
    expected = {
        "style_blend": (0.7, 0.3),
        "content_weight": 5.0,
        "style_weight": 0.5,
        "tv_weight": 0.1,
        "color": "luminance",
        "style_loss": "wasserstein",
        "content_layers": (("block4_conv2", 1.0),),
        "style_layers": (("block1_conv1", 0.5),),
        "pooling": "avg",
        "padding": "reflect",
        "steps": 7,
        "optimizer": "adam",
        "learning_rate": 0.1,
        "ema": 0.5,
        "scales": (128, 256),
        "seed": 3,
        "init": "noise",
        "snapshot_every": 2,
        "scale_start": config_lib.preset("quality").scale_start,
        "loss_norm": "target",
        "pass_ratio": 1.5,
        "max_step": 0.1,
        "compute_dtype": "bfloat16",
    }
    assert {name: getattr(cfg, name) for name in expected} == expected
    assert args.more_styles == [Path("s2.png")] and args.style_scale == 0.5 and args.size == 64
    assert args.quiet and args.weights == Path("w.npz") and args.snapshot_dir == Path("snaps")
    assert init_file(args) is None
    _, auto = parse_config("--scale-start", "100", "--scale-factor", "1.5")
    assert (auto.scales, auto.scale_start, auto.scale_factor) == ((), 100, 1.5)
    _, single = parse_config("--scales", "none")
    assert single.pyramid(512) == (512,)


@pytest.mark.parametrize("mode", config_lib.INITS)
def test_init_mode_names_keep_their_meaning(mode):
    args, cfg = parse_config("--init", mode)
    assert cfg.init == mode and init_file(args) is None


def test_init_file_leaves_the_config_init_alone():
    args, cfg = parse_config("--init", "start.png", "--preset", "seed")
    assert init_file(args) == Path("start.png")
    assert cfg.init == config_lib.preset("seed").init


# --- --init FILE -------------------------------------------------------------------------------


def _gradient(path: Path, width: int, height: int) -> Path:
    """A smooth, asymmetric RGB image: resizing it keeps every pixel's neighbourhood recognisable."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([255 * x / width, 255 * y / height, 128 + 0 * x], axis=-1).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_init_file_is_loaded_at_the_content_size(capsys, pair, tmp_path, monkeypatch, expected_wh):
    init = _gradient(tmp_path / "start.png", 30, 50)  # another aspect ratio than the content's
    calls = []

    def fake_stylize(content, styles, cfg, **kwargs):
        calls.append((content, cfg, kwargs))
        losses = {k: np.ones(1, np.float32) for k in ("total", "content", "style", "tv")}
        return stylize_module.StyleResult(content, losses)

    monkeypatch.setattr(stylize_module, "stylize", fake_stylize)
    out = tmp_path / "out.png"
    code, _, stderr = run(capsys, "stylize", *pair, "-o", out, "--size", SIZE, "--init", init, "--quiet")
    assert code == 0, stderr
    ((content, cfg, kwargs),) = calls
    init_image = kwargs["init_image"]
    assert init_image.shape == content.shape == (expected_wh[1], expected_wh[0], 3)
    assert init_image.dtype == np.float32 and 0 <= init_image.min() and init_image.max() <= 1
    np.testing.assert_array_equal(init_image, images.load_image(init, size=content.shape[:2]))
    assert cfg.init == "content"


def test_no_init_image_without_a_file(capsys, pair, tmp_path, monkeypatch):
    calls = []

    def fake_stylize(content, styles, cfg, **kwargs):
        calls.append(kwargs)
        return stylize_module.StyleResult(content, {"total": np.ones(1, np.float32)})

    monkeypatch.setattr(stylize_module, "stylize", fake_stylize)
    code, _, stderr = run(capsys, "stylize", *pair, "-o", tmp_path / "o.png", "--size", SIZE, "--init", "noise")
    assert code == 0, stderr
    assert calls[0]["init_image"] is None


def test_init_file_is_where_the_optimisation_starts(capsys, pair, tmp_path, expected_wh):
    init = _gradient(tmp_path / "start.png", 64, 40)
    out, snaps = tmp_path / "out.png", tmp_path / "snaps"
    code, _, stderr = run(
        capsys,
        "stylize",
        *pair,
        "-o",
        out,
        "--size",
        SIZE,
        "--steps",
        2,
        "--init",
        init,
        "--quiet",
        "--snapshot-every",
        1,
        "--snapshot-dir",
        snaps,
    )
    assert code == 0, stderr
    start = np.asarray(Image.open(snaps / "step_00000.png"))
    expected = images.to_uint8(images.load_image(init, size=(expected_wh[1], expected_wh[0])))
    np.testing.assert_array_equal(start, expected)


# --- persistent compilation cache --------------------------------------------------------------


def test_compilation_cache_dir_precedence(tmp_path):
    home = Path.home()
    assert compile_cache.cache_dir({}) == home / ".cache" / "jnst" / "jax"
    assert compile_cache.cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/jnst/jax")
    env = {"XDG_CACHE_HOME": "/x", "JNST_CACHE_DIR": "/j"}
    assert compile_cache.cache_dir(env) == Path("/j")
    assert compile_cache.cache_dir({**env, "JAX_COMPILATION_CACHE_DIR": "/jax"}) == Path("/jax")
    assert compile_cache.cache_dir({"JNST_CACHE_DIR": "", "XDG_CACHE_HOME": ""}) == home / ".cache" / "jnst" / "jax"
    assert compile_cache.cache_dir({"JNST_CACHE_DIR": "~/c"}) == home / "c"


def test_cache_folder_that_cannot_be_created_turns_the_cache_off(capsys, tmp_path):
    blocker = _text(tmp_path / "file")
    before = cache_settings()
    try:
        assert compile_cache.enable({"JNST_CACHE_DIR": str(blocker / "cache")}) is None
        after = cache_settings()
    finally:
        restore_cache_settings(before)
    assert after == {**before, "jax_enable_compilation_cache": False}
    err = capsys.readouterr().err
    assert err.startswith("jnst: warning: no compilation cache: cannot write ") and len(err.splitlines()) == 1


def test_cache_folder_is_created(tmp_path):
    before = cache_settings()
    folder = tmp_path / "a" / "b"
    try:
        assert compile_cache.enable({"JNST_CACHE_DIR": str(folder)}) == folder
        after = cache_settings()
    finally:
        restore_cache_settings(before)
    assert folder.is_dir()
    assert after["jax_compilation_cache_dir"] == str(folder)
    assert after["jax_persistent_cache_min_compile_time_secs"] == 0
    assert after["jax_persistent_cache_min_entry_size_bytes"] == -1


def test_stylize_fills_the_compilation_cache(pair, tmp_path):
    """In processes of their own: JAX sets up its cache once per process, at the first compilation."""
    cache = tmp_path / "cache"
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache), "JNST_CACHE_DIR": str(tmp_path / "unused")}
    for name in ("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"):
        env.pop(name, None)

    def stylize_in_a_process(out: Path) -> tuple[list[str], np.ndarray]:
        argv = [sys.executable, "-m", "jnst", "stylize", *map(str, pair), "-o", str(out), "--size", "48"]
        proc = subprocess.run([*argv, "--steps", "2", "--quiet"], capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr
        return sorted(p.name for p in cache.iterdir()), np.asarray(Image.open(out))

    first_entries, first_image = stylize_in_a_process(tmp_path / "first.png")
    entries, image = stylize_in_a_process(tmp_path / "second.png")
    # Every program is cached, however quickly it compiled (JAX's default keeps only those over 1 s:
    # two here, the style targets and the chunk of optimiser steps).
    assert len(first_entries) >= 10, first_entries
    assert entries == first_entries  # the second run compiled nothing new
    np.testing.assert_array_equal(first_image, image)  # and cached programs compute the same image
    assert not (tmp_path / "unused").exists()  # JAX's own variable wins


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


# --- batches and sweeps -----------------------------------------------------------------------


def test_several_contents_to_a_folder_grouped_by_size(capsys, pair, tmp_path, shared_images):
    """Two photos of one size run as one batch, a third of another size as its own; one output each."""
    content, style = pair
    flipped = tmp_path / "flipped.png"
    Image.open(content).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(flipped)  # tubingen's size
    other = shared_images / "chelsea.png"
    out = tmp_path / "out"
    code, stdout, stderr = run(capsys, "stylize", content, flipped, other, "--style", style, "-o", f"{out}/",
                               "--size", SIZE, "--steps", STEPS, "--quiet")  # fmt: skip
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["chelsea.png", "flipped.png", "tubingen.png"]
    assert "wrote 3 images" in stdout
    a, b = (np.asarray(assert_valid_image(out / n)) for n in ("tubingen.png", "flipped.png"))
    assert a.shape == b.shape and np.abs(a[:, ::-1].astype(int) - b).mean() < 40  # mirrored photos, like pictures


def test_sweep_writes_one_image_per_value_and_a_contact_sheet(capsys, pair, tmp_path, expected_wh):
    out = tmp_path / "cat.png"
    code, stdout, stderr = run(capsys, "stylize", *pair, "-o", out, "--sweep", "style-weight=0,10",
                               "--size", SIZE, "--steps", STEPS, "--quiet")  # fmt: skip
    assert code == 0, stderr
    low, high = (assert_valid_image(tmp_path / f"cat_style-weight={v}.png") for v in ("0", "10"))
    assert low.size == high.size == expected_wh
    assert np.abs(np.asarray(low, float) - np.asarray(high, float)).mean() > 1.0  # the weight shows
    sheet = assert_valid_image(tmp_path / "cat_sweep.png")
    assert sheet.width > 2 * expected_wh[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--sweep", "alpha=1,2"], "expected content-weight|style-weight|tv-weight=V1,V2"),
        (["--sweep", "style-weight=1,x"], "expected a number"),
        (["--snapshot-every", "2", "--sweep", "tv-weight=1,2"], "--snapshot-every works with one content"),
    ],
)
def test_sweep_errors(capsys, pair, tmp_path, no_stylize, argv, fragment):
    code, _, err = run(capsys, "stylize", *pair, "-o", tmp_path / "o.png", *argv)
    assert_one_line_error(code, err, fragment)


def test_folder_output_needs_named_styles(capsys, pair, tmp_path, no_stylize):
    code, _, err = run(capsys, "stylize", *pair, "-o", f"{tmp_path}/")
    assert_one_line_error(code, err, "name styles with --style")


def test_serve_without_its_extra_is_one_line(capsys, monkeypatch):
    import jnst

    # As if starlette and uvicorn were missing (and jnst.serve not imported yet by other tests).
    monkeypatch.setitem(sys.modules, "jnst.serve", None)
    monkeypatch.delattr(jnst, "serve", raising=False)
    code, _, err = run(capsys, "serve")
    assert_one_line_error(code, err, 'serve needs the serve extra: pip install "jnst[serve]"')
