import jax
import numpy as np
import pytest

from jnst import StyleConfig, stylize
from jnst.images import load_image
from jnst.loop import default_chunk_size, segments

FAST = StyleConfig(steps=6, chunk_size=3)


@pytest.fixture
def compile_counter():
    """Counts XLA backend compilations while the test runs."""
    events = []

    def listener(event, _duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            events.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    yield events
    jax.monitoring.unregister_event_duration_listener(listener)


def test_loss_decreases_and_pixels_stay_valid(model, small_pair):
    content, style = small_pair
    result = stylize(content, style, StyleConfig(steps=30, chunk_size=10), model=model)
    total = result.losses["total"]
    assert total.shape == (30,)
    assert total[-1] < 0.7 * total[0]
    assert result.image.shape == content.shape and result.image.dtype == np.float32
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0
    np.testing.assert_allclose(
        total, result.losses["content"] + result.losses["style"] + result.losses["tv"], rtol=1e-5
    )


def test_compiles_once_per_shape_and_config(model, small_pair, compile_counter):
    content, style = small_pair
    cfg = FAST.replace(init="content+noise", seed=1)
    stylize(content, style, cfg, model=model)
    first = len(compile_counter)
    # Steps and seed only steer the host loop: no new compilation.
    stylize(content, style, cfg.replace(steps=9, seed=3), model=model)
    assert first > 0
    assert len(compile_counter) == first


def test_weights_change_the_picture_not_the_compilation(model, small_pair, compile_counter):
    """Weights are arguments of the compiled step: a new weight reuses the compiled chunk (a
    sweep over weights compiles once) and still moves the result."""
    content, style = small_pair
    base = stylize(content, style, FAST, model=model)
    first = len(compile_counter)
    style_layers = tuple((name, 2.0 * w) for name, w in FAST.style_layers)
    for changes in [
        {"content_weight": 5.0},
        {"style_weight": 3.0},
        {"tv_weight": 50.0},
        {"style_layers": style_layers},
    ]:
        other = stylize(content, style, FAST.replace(**changes), model=model)
        assert np.abs(other.image - base.image).max() > 1e-3, changes
    assert len(compile_counter) == first


def test_deterministic_for_a_seed(model, small_pair):
    content, style = small_pair
    cfg = FAST.replace(init="content+noise", seed=7)
    a = stylize(content, style, cfg, model=model)
    b = stylize(content, style, cfg, model=model)
    c = stylize(content, style, cfg.replace(seed=8), model=model)
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("init", ["content", "noise", "content+noise"])
def test_init_modes(model, small_pair, init):
    content, style = small_pair
    result = stylize(content, style, FAST.replace(steps=1, init=init, snapshot_every=1), model=model)
    start = result.snapshots[0][1]
    diff = np.abs(start - content).mean()
    expected = {"content": (0, 1e-7), "content+noise": (1e-3, 0.06), "noise": (0.2, 1.0)}[init]
    assert expected[0] <= diff <= expected[1]


def test_snapshots_every_n_steps(model, small_pair):
    content, style = small_pair
    result = stylize(content, style, FAST.replace(steps=7, snapshot_every=3), model=model)
    assert [step for step, _ in result.snapshots] == [0, 3, 6, 7]
    np.testing.assert_array_equal(result.snapshots[-1][1], result.image)
    assert result.losses["total"].shape == (7,)


def test_segments_end_on_snapshots():
    assert segments(0, 7, 0, 3) == [3, 3, 1]
    assert segments(0, 7, 3, 2) == [2, 1, 0, 2, 1, 0, 1]
    assert segments(4, 5, 3, 2) == [2, 0, 2, 1, 0]
    assert sum(segments(0, 3001, 250, 10)) == 3001


def test_rejects_bad_shapes(model):
    with pytest.raises(ValueError, match="content image must be"):
        stylize(np.zeros((8, 8)), np.zeros((8, 8, 3)), FAST, model=model)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"steps": -1}, "steps must be a positive integer"),
        ({"pass_ratio": -1.0}, "pass_ratio must be positive"),
        ({"content_layers": (("block9_conv1", 1.0),)}, "unknown VGG19 layer"),
        ({"learning_rate": -1.0}, "learning_rate must be positive"),
        ({"init": "zeros"}, "init must be one of"),
        ({"style_weight": float("nan")}, "style_weight must be finite"),
    ],
)
def test_config_validates(changes, message):
    with pytest.raises(ValueError, match=message):
        StyleConfig().replace(**changes)


def test_chunk_is_unrolled_short_on_cpu_and_shorter_for_small_and_big_images():
    # Small pictures: each pass's compilation outweighs a longer chunk's speed. Big ones: XLA:CPU
    # keeps image-sized buffers of every unrolled step alive.
    assert default_chunk_size("cpu", 192 * 256) == 1
    assert default_chunk_size("cpu", 384 * 512) == 5
    assert default_chunk_size("cpu", 1536 * 2048) == 1
    assert default_chunk_size("cpu", 4000 * 3000) == 1
    assert default_chunk_size("gpu", 768 * 1024) == 50


def test_accelerator_path_runs_on_cpu(model, shared_images, monkeypatch):
    # What a GPU or TPU runs (one rolled 50-step chunk; bfloat16 activations when asked), forced
    # on the CPU so that a GPU user is not the first to execute it. At 96 px: at 64 px the zero
    # border's share of the deep layers left bfloat16's final loss 10.7 % above float32's (3.8 %
    # at 96 px; replicated border 3.0 % at both; AVX2 EPYC).
    content, style = (load_image(shared_images / f"{name}.jpg", 96) for name in ("tubingen", "starry_night"))
    config = StyleConfig(steps=50, scale_start=0)
    chunks: dict[str, list[int]] = {}

    def run(name: str, cfg: StyleConfig):
        record = lambda step, *_: chunks.setdefault(name, []).append(step)  # noqa: E731
        return stylize(content, style, cfg, model=model, callback=record)

    cpu = run("cpu", config)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    rolled, bf16 = run("rolled", config), run("bf16", config.replace(compute_dtype="bfloat16"))
    assert chunks == {"cpu": list(range(1, 51)), "rolled": [50], "bf16": [50]}
    # The rolled loop computes the same steps (the same losses until rounding, which 50 L-BFGS
    # steps amplify, sets the paths apart); bfloat16 rounds the activations: equally good pictures.
    np.testing.assert_allclose(rolled.losses["total"][:10], cpu.losses["total"][:10], rtol=1e-3)
    final = lambda r: r.losses["total"][-1]  # noqa: E731
    for other in (rolled, bf16):
        assert final(other) < 0.5 * other.losses["total"][0]
        assert abs(final(other) - final(cpu)) < 0.05 * final(cpu)
        assert np.abs(other.image - cpu.image).mean() < 0.1


def test_init_image_is_the_start(model, small_pair):
    content, style = small_pair
    start = np.full_like(content, 0.25)
    result = stylize(content, style, FAST.replace(snapshot_every=3), init_image=start, model=model)
    np.testing.assert_allclose(result.snapshots[0][1], start, atol=1e-6)
    with pytest.raises(ValueError, match="init image must be the content's size"):
        stylize(content, style, FAST, init_image=start[:-1], model=model)


def test_coarse_to_fine_reports_its_passes(model, shared_images):
    from jnst.images import load_image

    content = load_image(shared_images / "tubingen.jpg", 96)
    style = load_image(shared_images / "starry_night.jpg", 96)
    cfg = StyleConfig(steps=12, scales=(48, 68), pass_ratio=2.0, chunk_size=2)
    result = stylize(content, style, cfg, model=model)
    assert result.pass_steps == (6, 4, 2) and result.losses["total"].shape == (12,)
    assert result.image.shape == content.shape


def test_seed_preset_is_the_seed_method():
    from jnst import preset

    seed = preset("seed")
    assert (seed.steps, seed.snapshot_every, seed.optimizer, seed.learning_rate, seed.b1, seed.b2, seed.eps) == (
        3001,
        250,
        "adam",
        0.02,
        0.99,
        0.999,
        0.1,
    )
    assert seed.content_layers == (("block5_conv4", 1.0),)
    assert seed.style_layers == tuple((f"block{i}_conv1", 0.2) for i in range(1, 6))
    assert (seed.content_weight, seed.beta, seed.tv_weight, seed.loss_norm, seed.padding) == (
        1e4,
        1e-2,
        0.0,
        "mean",
        "zero",
    )
    assert (seed.init, seed.ema, seed.pyramid(512), seed.pooling) == ("content+noise", 0.0, (512,), "max")
