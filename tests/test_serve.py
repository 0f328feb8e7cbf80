"""``jnst serve``'s JSON API through Starlette's test client: the happy path, a sweep, stop, the
queue, every kind of bad input, and a load check of 20 jobs (order and memory).

Every job is tiny (64 px, a few steps of the ``preview`` preset) and all run on one model, so
the compiled programs are shared between tests.
"""

from __future__ import annotations

import gc
import io
import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from corpus import png_lie
from PIL import Image
from test_cli import assert_one_line_error, run

pytest.importorskip("starlette", reason="the serve extra is not installed")
pytest.importorskip("multipart", reason="the serve extra is not installed")

from starlette.testclient import TestClient  # noqa: E402

from jnst.config import StyleConfig  # noqa: E402
from jnst.serve import app as app_lib  # noqa: E402
from jnst.serve import settings as settings_lib  # noqa: E402
from jnst.serve.inputs import Inputs  # noqa: E402
from jnst.serve.jobs import FINISHED, JobQueue  # noqa: E402

QUICK = {"preset": "preview", "size": 64, "steps": 5}  # a few short compiled chunks on CPU (2 steps each at 64 px)


@pytest.fixture(scope="module")
def client(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    with TestClient(app_lib.create_app(root, model)) as test_client:
        yield test_client


def post_job(client, pair_bytes, settings: dict | str = QUICK, content: bytes | None = None, styles=None):
    """POST /api/jobs with the pair (or the given bytes) and ``settings``; the response."""
    files = [("content", ("photo.jpg", pair_bytes[0] if content is None else content))]
    files += [("style", (f"s{i}.jpg", data)) for i, data in enumerate(styles or [pair_bytes[1]])]
    text = settings if isinstance(settings, str) else json.dumps(settings)
    return client.post("/api/jobs", files=files, data={"settings": text})


def start(client, pair_bytes, settings: dict = QUICK) -> str:
    response = post_job(client, pair_bytes, settings)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def wait_for(poll, until, timeout: float = 180) -> dict:
    """Call ``poll`` until ``until`` holds for its answer; that answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = poll()
        if until(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"still {status} after {timeout} s")


def wait(client, job_id: str, until=lambda status: status["state"] in FINISHED) -> dict:
    """Poll the job's status through the API until ``until`` holds; the status then."""
    return wait_for(lambda: client.get(f"/api/jobs/{job_id}").json(), until)


def png(data: bytes) -> Image.Image:
    """The decoded PNG in ``data``, after checking that it is one."""
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        img.verify()
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def events(client, job_id: str) -> list[dict]:
    """Every status the live stream sends, until the job finishes (the stream then ends)."""
    body = client.get(f"/api/jobs/{job_id}/events").text
    return [json.loads(line[len("data: ") :]) for line in body.splitlines() if line.startswith("data: ")]


def test_happy_path_streams_progress_and_ends_with_a_png(client, pair_bytes):
    job_id = start(client, pair_bytes, {**QUICK, "steps": 10})
    stream = events(client, job_id)
    # Progress arrives chunk by chunk, every chunk's end however slowly the stream is read.
    chunks = [s["step"] for s in client.app.state.queue.get(job_id).chunks]
    steps = [s["step"] for s in stream if s["state"] == "running" and s["step"]]
    assert steps == chunks and len(chunks) >= 3 and chunks == sorted(chunks) and chunks[-1] == 10, (steps, chunks)
    final = stream[-1]
    assert final["state"] == "done" and final["step"] == final["total_steps"] == 10
    assert final["loss"] > 0 and final["error"] is None and final["images"] == 1
    assert client.get(f"/api/jobs/{job_id}").json() == final
    image = png(client.get(f"/api/jobs/{job_id}/image").content)
    assert max(image.size) == 64
    # The job's folder holds its inputs under the server's names, whatever the client called them,
    # its settings, and its end: the image and the final status (its checkpoint is gone).
    folder = client.app.state.queue.get(job_id).folder
    assert sorted(p.name for p in folder.iterdir()) == [
        "content",
        "finished.json",
        "image-0.png",
        "job.json",
        "style-0",
    ]
    assert json.loads((folder / "job.json").read_text())["settings"] == json.dumps({**QUICK, "steps": 10})
    assert (folder / "image-0.png").read_bytes() == client.get(f"/api/jobs/{job_id}/image").content


def test_sweep_gives_one_image_per_value(client, pair_bytes):
    job_id = start(client, pair_bytes, {**QUICK, "sweep": {"name": "style_weight", "values": [0.5, 4]}})
    status = wait(client, job_id)
    assert status["state"] == "done" and status["images"] == 2
    assert status["labels"] == ["style_weight 0.5", "style_weight 4"]
    first, second = (client.get(f"/api/jobs/{job_id}/image?item={i}").content for i in (0, 1))
    assert png(first).size == png(second).size and first != second
    assert client.get(f"/api/jobs/{job_id}/image?item=2").status_code == 404


def test_semantic_job_shows_its_regions_beside_the_image(client, pair_bytes):
    """With ``semantic``, the job finds regions first: their picture (photo then painting, as
    ``OUT_regions.png``) is served, kept in the folder, and told by the status."""
    job_id = start(client, pair_bytes, {**QUICK, "semantic": 2})
    status = wait(client, job_id)
    assert status["state"] == "done" and status["regions"] is True, status
    regions = client.get(f"/api/jobs/{job_id}/regions")
    image = png(client.get(f"/api/jobs/{job_id}/image").content)
    shown = png(regions.content)
    assert shown.height == image.height and shown.width > 2 * image.width
    folder = client.app.state.queue.get(job_id).folder
    assert (folder / "regions.png").read_bytes() == regions.content
    plain = start(client, pair_bytes)
    assert wait(client, plain)["regions"] is False
    missing = client.get(f"/api/jobs/{plain}/regions")
    assert missing.status_code == 404 and "no semantic setting" in missing.json()["error"]


def test_stop_keeps_the_current_image(client, pair_bytes):
    job_id = start(client, pair_bytes, {**QUICK, "steps": 400})
    wait(client, job_id, lambda status: status["step"] > 0)
    response = client.delete(f"/api/jobs/{job_id}")
    assert response.status_code == 200
    status = wait(client, job_id)
    assert status["state"] == "stopped" and 0 < status["step"] < 400
    assert max(png(client.get(f"/api/jobs/{job_id}/image").content).size) == 64


def test_queue_runs_jobs_one_at_a_time_in_order_and_stops_waiting_ones(client, pair_bytes):
    long_job = start(client, pair_bytes, {**QUICK, "steps": 400})
    wait(client, long_job, lambda status: status["state"] == "running")
    second, third = start(client, pair_bytes), start(client, pair_bytes)
    places = [client.get(f"/api/jobs/{j}").json() for j in (second, third)]
    assert [(s["state"], s["place"]) for s in places] == [("queued", 1), ("queued", 2)]
    stopped = client.delete(f"/api/jobs/{second}").json()
    assert stopped["state"] == "stopped" and stopped["step"] == 0
    assert client.get(f"/api/jobs/{third}").json()["place"] == 1
    assert client.get(f"/api/jobs/{second}/image").status_code == 404
    client.delete(f"/api/jobs/{long_job}")
    assert wait(client, third)["state"] == "done"
    assert wait(client, long_job)["state"] == "stopped"


def test_a_failing_job_is_reported_and_the_worker_goes_on(tmp_path):
    queue = JobQueue(tmp_path, model="not a model")  # every run fails inside stylize
    inputs = Inputs(np.zeros((32, 32, 3), np.float32), [np.ones((32, 32, 3), np.float32)], [StyleConfig(steps=1)])
    jobs = [queue.submit(*queue.new_folder(), inputs, "{}") for _ in range(2)]
    try:
        statuses = [wait_for(lambda job=job: queue.status(job), lambda s: s["state"] in FINISHED) for job in jobs]
    finally:
        queue.close()
    for job, status in zip(jobs, statuses, strict=True):
        assert status["state"] == "failed" and status["error"].startswith("AttributeError: ")
        assert "\n" not in status["error"]
        # Recorded as finished, so that a restart does not run it again.
        assert json.loads((job.folder / "finished.json").read_text())["error"] == status["error"]


def _rss() -> int:
    """This process's resident memory in bytes (the server runs in it)."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    pytest.skip("no /proc/self/status")


def test_twenty_jobs_at_once_queue_run_in_order_and_leave_memory_flat(client, pair_bytes):
    queue = client.app.state.queue
    blocker = start(client, pair_bytes, {**QUICK, "steps": 400})  # holds the device while the 20 arrive
    wait(client, blocker, lambda status: status["state"] == "running")
    ids = [start(client, pair_bytes) for _ in range(20)]
    submitted = [client.get(f"/api/jobs/{j}").json() for j in ids]
    assert [(s["state"], s["place"]) for s in submitted] == [("queued", place) for place in range(1, 21)]
    client.delete(f"/api/jobs/{blocker}")
    wait(client, ids[0])
    after_first = _rss()
    while True:
        with queue.lock:  # one snapshot of every state
            states = [queue.get(j).state for j in ids]
        # In order: finished jobs, at most one running, then the waiting ones.
        order = {"done": 0, "running": 1, "queued": 2}
        assert [order[s] for s in states] == sorted(order[s] for s in states), states
        assert states.count("running") <= 1
        if set(states) == {"done"}:
            break
        time.sleep(0.05)
    after_all = _rss()
    print(f"server RSS after the first job {after_first / 2**20:.0f} MiB, after 20: {after_all / 2**20:.0f} MiB")
    assert abs(after_all - after_first) <= 0.10 * after_first


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    return png_lie(buf.getvalue(), ihdr={0: 30000, 1: 30000})


def _sliver() -> bytes:
    """A 400x4 photo: 64x1 at 64 px, too thin for the layers."""
    buf = io.BytesIO()
    Image.new("RGB", (400, 4), "red").save(buf, format="PNG")
    return buf.getvalue()


BAD_UPLOADS = {
    "text content": ({"content": b"hello, not an image"}, "content: not an image Pillow can read"),
    "empty content": ({"content": b""}, "content: empty file"),
    "bomb style": ({"styles": [_bomb()]}, "style-0: image too large"),
    "truncated style": ({"styles": ["truncated"]}, "style-0: truncated or corrupt image"),
    "nine styles": ({"styles": ["style"] * 9}, "Too many files"),
    "a sliver": ({"content": "sliver"}, "content is 64x1 at this size; every side needs"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_images_get_a_400_with_one_line(client, pair_bytes, case):
    given, fragment = BAD_UPLOADS[case]
    styles = [pair_bytes[1][:5000] if s == "truncated" else pair_bytes[1] if s == "style" else s
              for s in given.get("styles", [pair_bytes[1]])]  # fmt: skip
    content = _sliver() if given.get("content") == "sliver" else given.get("content")
    before = set(client.app.state.queue.root.iterdir())
    response = post_job(client, pair_bytes, content=content, styles=styles)
    assert response.status_code == 400
    assert fragment in response.json()["error"] and "\n" not in response.json()["error"]
    assert str(client.app.state.queue.root) not in response.text  # no server paths in errors
    assert set(client.app.state.queue.root.iterdir()) == before  # the failed job's folder is gone


BAD_SETTINGS = {
    "not json": ("{size: 64", "settings are not valid JSON"),
    "a list": ("[64]", "settings must be a JSON object"),
    "unknown key": ({"sise": 64}, "unknown setting 'sise'"),
    "unknown preset": ({"preset": "fast"}, "unknown preset 'fast'"),
    "size too big": ({"size": 5000}, f"size must be a whole number from 32 to {settings_lib.MAX_SIZE}"),
    "size a string": ({"size": "64"}, 'size must be a whole number from 32 to 1024, got "64"'),
    "zero steps": ({"steps": 0}, "steps must be a whole number from 1 to"),
    "negative style weight": ({"style_weight": -1}, "style_weight must be finite and >= 0"),
    "boolean weight": ({"content_weight": True}, "content_weight must be a finite number, got true"),
    "bad colour": ({"color": "sepia"}, "color must be one of none, luminance, match"),
    "blend length": ({"style_blend": [1, 2]}, "style_blend needs one weight per style image (1)"),
    "sweep name": ({"sweep": {"name": "lr", "values": [1]}}, "sweep must be"),
    "sweep too long": ({"sweep": {"name": "tv_weight", "values": [1] * 7}}, "a sweep takes 1 to 6 values, got 7"),
    "seed preset's steps": ('{"preset": "seed"}', "runs 3001 steps, more than this server's"),
    "no regions": ({"semantic": 0}, 'semantic must be a whole number from 1 to 8 or "auto", got 0'),
    "regions a word": ({"semantic": "two"}, 'semantic must be a whole number from 1 to 8 or "auto", got "two"'),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_bad_settings_get_a_400_with_one_line(client, pair_bytes, case):
    settings, fragment = BAD_SETTINGS[case]
    if isinstance(settings, dict):
        settings = {**QUICK, **settings}
    response = post_job(client, pair_bytes, settings)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"] and "\n" not in response.json()["error"]


def test_bad_requests(client, pair_bytes):
    no_content = client.post("/api/jobs", files=[("style", ("s.jpg", pair_bytes[1]))])
    assert no_content.status_code == 400 and "give a content image" in no_content.json()["error"]
    text_content = client.post("/api/jobs", data={"content": "x"}, files=[("style", ("s.jpg", pair_bytes[1]))])
    assert text_content.status_code == 400 and text_content.json() == {"error": "content must be a file"}
    no_style = client.post("/api/jobs", files=[("content", ("c.jpg", pair_bytes[0]))])
    assert no_style.status_code == 400 and "give 1 to 8 style images, got 0" in no_style.json()["error"]
    chunked = client.post("/api/jobs", content=iter([b"--x--"]), headers={"content-type": "multipart/form-data"})
    assert chunked.status_code == 411 and "Content-Length" in chunked.json()["error"]


def test_an_oversized_upload_gets_a_413(client, pair_bytes):
    response = post_job(client, pair_bytes, content=b"\0" * (app_lib.MAX_UPLOAD + 1))
    assert response.status_code == 413 and "over this server's limit" in response.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs/nope",
        "/api/jobs/nope/image",
        "/api/jobs/nope/events",
        "/api/jobs/..%2F..%2Fetc%2Fpasswd/image",
        "/static/../app.py",
        "/static/..%2Fapp.py",
        "/static/%2Fetc%2Fpasswd",
    ],
)
def test_unknown_jobs_and_paths_outside_the_static_folder_are_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "root:" not in response.text and "create_app" not in response.text
    if path.startswith("/api/"):
        assert response.json()["error"] in ("no such job", "Not Found")
        assert client.delete(path.removesuffix("/image").removesuffix("/events")).status_code == 404


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    info = client.get("/api/presets").json()
    assert set(info["presets"]) == {"default", "preview", "quality", "seed"}


def test_the_serve_command_says_where_and_refuses_a_busy_port(monkeypatch, capsys, tmp_path):
    import uvicorn

    from jnst import compile_cache, serve

    served, folders = [], []

    class Server:
        def __init__(self, config: str):
            assert config == "config of the app"

        def run(self, sockets: list[socket.socket]) -> None:
            served.append(sockets[0].getsockname())

    monkeypatch.setattr(compile_cache, "enable", lambda: None)
    monkeypatch.setattr(serve, "create_app", lambda folder: folders.append(folder) or "app")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(uvicorn, "Config", lambda app, log_level: f"config of the {app}")
    monkeypatch.setattr(uvicorn, "Server", Server)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(capsys, "serve", "--port", port)
        assert_one_line_error(code, err, f"cannot listen on 127.0.0.1:{port} (")
    assert served == [] and folders == []  # the port is checked first
    code, out, _ = run(capsys, "serve", "--port", port)
    assert code == 0 and served == [("127.0.0.1", port)]
    assert f"http://127.0.0.1:{port}/ (bound to 127.0.0.1: this machine only" in out
    assert folders == [tmp_path / "jnst" / "serve"] and f"jobs are kept in {folders[0]}" in out
    code, out, _ = run(capsys, "serve", "--port", port, "--folder", tmp_path / "jobs")
    assert code == 0 and folders[-1] == tmp_path / "jobs"
