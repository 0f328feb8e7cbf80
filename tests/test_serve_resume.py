"""``jnst serve`` across restarts: a new queue on the same folder takes the jobs back under their
ids, resumes an interrupted one from its checkpoint to the uninterrupted image (bit for bit),
leaves finished ones alone, and restarts a job whose checkpoint is refused from step 0, saying so.

A crash is simulated in-process: an exception that is not an ``Exception`` ends the worker
thread after a chunk, as a killed server would, leaving the job unfinished with the checkpoint
of the chunk before. Jobs are tiny (64 px, 12 steps: 2-step chunks on a CPU).
"""

from __future__ import annotations

import json
import socket
import threading
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from test_cli import assert_one_line_error, run
from test_serve import wait_for

pytest.importorskip("starlette", reason="the serve extra is not installed")
pytest.importorskip("multipart", reason="the serve extra is not installed")

from starlette.testclient import TestClient  # noqa: E402

from jnst import compile_cache  # noqa: E402
from jnst.serve import app as app_lib  # noqa: E402
from jnst.serve.inputs import input_paths, read_inputs  # noqa: E402
from jnst.serve.jobs import FINISHED, Job, JobQueue  # noqa: E402
from jnst.serve.settings import parse  # noqa: E402

SETTINGS = json.dumps({"preset": "preview", "size": 64, "steps": 12})


class Crash(BaseException):
    """Ends the worker thread as a killed server would: nothing marks the job finished."""


@pytest.fixture
def chunks(monkeypatch):
    """Every job's chunks as ``(step, float images)`` by id (the PNGs round to 8 bits), and
    ``crash``: job id -> the chunk (1 = first) whose arrival ends the worker with :class:`Crash`."""
    seen: dict[str, list] = defaultdict(list)
    crash: dict[str, int] = {}
    publish = JobQueue._on_chunk

    def on_chunk(queue: JobQueue, job: Job, step: int, terms: list, imgs: list) -> None:
        seen[job.id].append((step, imgs))
        if crash.get(job.id) == len(seen[job.id]):
            raise Crash
        publish(queue, job, step, terms, imgs)

    monkeypatch.setattr(JobQueue, "_on_chunk", on_chunk)
    died = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(args.exc_type))
    return seen, crash, died


def submit(queue: JobQueue, pair: tuple[bytes, bytes], crash: dict[str, int] | None = None, at: int = 0) -> Job:
    """Queue the pair under ``SETTINGS`` as the app does (the worker crashes at chunk ``at`` if given)."""
    job_id, folder = queue.new_folder()
    for path, data in zip(input_paths(folder, 1), pair, strict=True):
        path.write_bytes(data)
    if at:
        crash[job_id] = at
    return queue.submit(job_id, folder, read_inputs(folder, parse(SETTINGS, 1), 1), SETTINGS)


def finish(queue: JobQueue, job_id: str) -> dict:
    job = queue.get(job_id)
    return wait_for(lambda: queue.status(job), lambda status: status["state"] in FINISHED)


def crashed(queue: JobQueue, died: list) -> None:
    """Wait for the worker to die of the crash, then let go of the folder (the process would exit)."""
    queue.worker.join(120)
    assert died == [Crash]
    queue.close()


def test_an_interrupted_job_resumes_under_its_id_to_the_uninterrupted_image(model, pair_bytes, tmp_path, chunks):
    seen, crash, died = chunks
    root = tmp_path / "jobs"
    first = JobQueue(root, model, checkpoint_every=0)
    reference = submit(first, pair_bytes)
    assert finish(first, reference.id)["state"] == "done"
    job = submit(first, pair_bytes, crash, at=4)
    crashed(first, died)
    assert first.get(job.id).state == "running"
    # Checkpoints after every chunk: the newest is the third's (the fourth never got to it).
    saved = seen[job.id][2][0]
    assert [p.name for p in (root / job.id / "checkpoints").iterdir()] == [f"step_{saved:08d}"]
    (root / ("0" * 32)).mkdir()  # a job's folder without job.json: an upload cut short
    (root / "photos").mkdir()  # not the server's: left alone

    second = JobQueue(root, model, checkpoint_every=0)
    try:
        assert list(second.jobs) == [reference.id, job.id]
        status = finish(second, job.id)
        again = second.get(reference.id)
        assert (again.state, again.pngs) == ("done", reference.pngs)
    finally:
        second.close()
    assert len(seen[reference.id]) == len(seen[job.id]) - 1  # the finished job did not run again
    assert status["state"] == "done" and status["step"] == status["total_steps"] == 12
    assert status["note"] == f"resumed at step {saved} from its checkpoint"
    # The resumed run began with the chunk the crash cut short, and made it again exactly.
    assert seen[job.id][4][0] == seen[job.id][3][0]
    np.testing.assert_array_equal(seen[job.id][4][1][0], seen[job.id][3][1][0])
    np.testing.assert_array_equal(seen[job.id][-1][1][0], seen[reference.id][-1][1][0])
    assert second.get(job.id).pngs == reference.pngs
    assert sorted(p.name for p in root.iterdir()) == sorted([".lock", reference.id, job.id, "photos"])
    assert not (root / job.id / "checkpoints").exists()


def _foreign(folder: Path) -> None:
    """As if made by another JAX version."""
    meta = next(folder.glob("step_*/jnst.json"))
    data = json.loads(meta.read_text())
    data["fingerprint"]["jax"] = "0.0.1"
    meta.write_text(json.dumps(data))


def _damaged(folder: Path) -> None:
    """Every file orbax wrote overwritten with zeros."""
    for path in next(folder.glob("step_*")).rglob("*"):
        if path.is_file() and path.name != "jnst.json":
            path.write_bytes(bytes(path.stat().st_size))


@pytest.mark.parametrize(("spoil", "why"), [(_foreign, "from another run (jax 0.0.1 -> "), (_damaged, "damaged")])
def test_a_refused_checkpoint_restarts_from_step_0_with_a_note(model, pair_bytes, tmp_path, chunks, spoil, why):
    seen, crash, died = chunks
    root = tmp_path / "jobs"
    first = JobQueue(root, model, checkpoint_every=0)
    job = submit(first, pair_bytes, crash, at=3)
    crashed(first, died)
    spoil(root / job.id / "checkpoints")
    second = JobQueue(root, model, checkpoint_every=0)
    try:
        status = finish(second, job.id)
    finally:
        second.close()
    assert status["state"] == "done" and status["error"] is None
    assert status["note"].startswith("restarted from step 0: ") and why in status["note"]
    assert str(root) not in status["note"]
    # It ran from the start: the same first two chunks again, then to the end.
    steps = [step for step, _ in seen[job.id]]
    assert steps[3:5] == steps[:2] and steps[-1] == 12
    for (_, before), (_, after) in zip(seen[job.id][:2], seen[job.id][3:5], strict=True):
        np.testing.assert_array_equal(before[0], after[0])


def test_a_server_restart_through_the_api_resumes_the_job_a_page_follows(model, pair_bytes, tmp_path):
    """The app's shutdown (Ctrl-C) checkpoints the running job; the next server serves it by id."""
    root = tmp_path / "jobs"
    with TestClient(app_lib.create_app(root, model)) as client:  # checkpoints every 20 s: only at shutdown
        files = [("content", ("a.png", pair_bytes[0])), ("style", ("b.png", pair_bytes[1]))]
        settings = json.dumps({"preset": "preview", "size": 64, "steps": 200})
        job_id = client.post("/api/jobs", files=files, data={"settings": settings}).json()["id"]
        waiting = client.post("/api/jobs", files=files, data={"settings": SETTINGS}).json()["id"]
        wait_for(lambda: client.get(f"/api/jobs/{job_id}").json(), lambda status: status["step"] >= 4)
    reached = json.loads(next((root / job_id / "checkpoints").glob("step_*/jnst.json")).read_text())["step"]
    assert 4 <= reached < 200
    with TestClient(app_lib.create_app(root, model)) as client:
        status = client.get(f"/api/jobs/{waiting}").json()
        assert (status["state"], status["place"]) == ("queued", 1)
        resumed = wait_for(lambda: client.get(f"/api/jobs/{job_id}").json(), lambda s: s["note"] is not None)
        assert resumed["note"] == f"resumed at step {reached} from its checkpoint"
        client.delete(f"/api/jobs/{job_id}")
        stopped = wait_for(lambda: client.get(f"/api/jobs/{job_id}").json(), lambda s: s["state"] in FINISHED)
        assert stopped["state"] == "stopped" and stopped["step"] > reached
        after = wait_for(lambda: client.get(f"/api/jobs/{waiting}").json(), lambda s: s["state"] in FINISHED)
        assert after["state"] == "done"
    assert not (root / job_id / "checkpoints").exists()  # a stopped job does not resume


def test_one_server_per_folder(tmp_path, capsys, model, monkeypatch):
    monkeypatch.setattr(compile_cache, "enable", lambda: None)
    queue = JobQueue(tmp_path, model)
    try:
        with pytest.raises(ValueError, match="in use by another jnst serve"):
            JobQueue(tmp_path, model)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        code, _, err = run(capsys, "serve", "--port", port, "--folder", tmp_path)
        assert_one_line_error(code, err, f"{tmp_path} is in use by another jnst serve")
    finally:
        queue.close()
    JobQueue(tmp_path, model).close()  # free again once closed


def test_a_semantic_job_resumes_with_the_same_regions_and_keeps_their_picture(model, pair_bytes, tmp_path, chunks):
    """The regions are found again after a restart, the same (a fixed seed), so the checkpoint
    fits them and the job resumes; a finished job's regions picture comes back from its folder."""
    seen, crash, died = chunks
    root = tmp_path / "jobs"
    text = json.dumps({"preset": "preview", "size": 64, "steps": 8, "semantic": 2})
    first = JobQueue(root, model, checkpoint_every=0)
    job_id, folder = first.new_folder()
    for path, data in zip(input_paths(folder, 1), pair_bytes, strict=True):
        path.write_bytes(data)
    crash[job_id] = 3
    first.submit(job_id, folder, read_inputs(folder, parse(text, 1), 1), text)
    crashed(first, died)
    regions = (folder / "regions.png").read_bytes()
    second = JobQueue(root, model, checkpoint_every=0)
    try:
        status = finish(second, job_id)
    finally:
        second.close()
    assert status["state"] == "done" and status["note"].startswith("resumed at step "), status
    assert status["regions"] and (folder / "regions.png").read_bytes() == regions
    third = JobQueue(root, model, checkpoint_every=0)
    try:
        assert third.get(job_id).regions == regions and third.status(third.get(job_id))["regions"]
    finally:
        third.close()
