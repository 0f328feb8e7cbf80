"""Jobs for ``jnst serve``: their state, a queue, and the one worker thread that runs them.

Jobs run one at a time (the device holds one optimisation at a time) through
:func:`jnst.stylize_batch` with a callback, on one :class:`jnst.vgg.Model` built once, so a job
at a size seen before reuses the compiled programs. The callback publishes each compiled
chunk's image (PNG bytes) and progress; a stopped job ends after its chunk, keeping the last image.

Jobs survive a restart. Each has a folder under the queue's folder, named by its id, holding its
inputs under the server's names (``content``, ``style-0`` …: :mod:`jnst.serve.inputs`),
``job.json`` (its settings as sent and its place in the order of submission), its checkpoint
while it runs (``checkpoints/``, see :mod:`jnst.checkpoint`) and, once finished, its images and
``finished.json``; a job with ``semantic`` regions also ``regions.png``, the photo's and the
paintings' matched regions, as soon as they are found. A new queue on the folder takes the jobs
back in their order under their ids: finished ones as they ended, the others queued again, each
resuming from its checkpoint (one that is refused, e.g. after an upgrade, restarts from step 0
with a note). Closing the queue ends the running job after its chunk with a checkpoint,
unfinished, for the next queue to resume.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import itertools
import json
import os
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from jnst import images, semantic
from jnst.checkpoint import CheckpointError, Checkpoints, Position
from jnst.schedule import pass_plan
from jnst.serve import settings as settings_lib
from jnst.serve.inputs import Inputs, read_inputs
from jnst.stylize import stylize_batch
from jnst.vgg import Model

QUEUED, RUNNING, DONE, STOPPED, FAILED = "queued", "running", "done", "stopped", "failed"
FINISHED = (DONE, STOPPED, FAILED)
# Finished jobs kept (with their images and folders) before the oldest are dropped.
KEEP_FINISHED = 50
# Most seconds of a running job's work that a crash can lose. A checkpoint costs 0.15-0.25 s at
# 64-256 px and 0.6 s at 1024 px (2-core EPYC, orbax, fsynced): after every chunk it would more
# than double a 64 px job (0.16 s a chunk); every 20 s it costs 1 to 3 %.
CHECKPOINT_SECONDS = 20.0
JOB_FILE, FINISHED_FILE, CHECKPOINTS, LOCK_FILE = "job.json", "finished.json", "checkpoints", ".lock"
REGIONS_FILE = "regions.png"
# What finished.json keeps of a job, besides how many images it has.
ENDED = ("state", "step", "total_steps", "loss", "error", "labels", "note")


class _Stop(Exception):
    """Raised after a chunk to end a run: the job was stopped, or the queue is closing."""


@dataclass
class Job:
    """One stylization: its inputs, its progress and its latest images as PNG bytes."""

    id: str
    folder: Path
    inputs: Inputs | None
    total_steps: int
    state: str = QUEUED
    step: int = 0
    loss: float | None = None
    error: str | None = None
    pngs: list[bytes] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    started: float | None = None  # time of the first chunk (after compilation) and its step
    first_step: int = 0
    speed: float | None = None  # steps per second since the first chunk
    stop: threading.Event = field(default_factory=threading.Event)
    note: str | None = None  # how a restart took it back: resumed at a step, or restarted
    chunks: list[dict] = field(default_factory=list)  # the status at each chunk's end, for the stream
    regions: bytes | None = None  # with semantic regions: the picture of them (PNG), once found

    def status(self, place: int | None) -> dict:
        """The JSON the API returns: state, progress, place in the queue (1: next), error, note."""
        left = None
        if self.speed and self.state == RUNNING:
            left = round((self.total_steps - self.step) / self.speed, 1)
        return {
            "id": self.id,
            "state": self.state,
            "step": self.step,
            "total_steps": self.total_steps,
            "loss": self.loss,
            "speed": None if self.speed is None else round(self.speed, 3),
            "seconds_left": left,
            "place": place,
            "images": len(self.pngs),
            "labels": self.labels,
            "error": self.error,
            "note": self.note,
            "regions": self.regions is not None,
        }


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W, 3) float image in [0, 1] as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(images.to_uint8(image)).save(buf, format="PNG")
    return buf.getvalue()


def _total_steps(inputs: Inputs) -> int:
    hw = inputs.content.shape[:2]
    return sum(p.steps for p in pass_plan(hw, [s.shape[:2] for s in inputs.styles], inputs.configs[0]))


def _write_json(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` whole or not at all (a new file renamed into place)."""
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(data))
    os.replace(part, path)


def _is_id(name: str) -> bool:
    """Whether a folder's name is a job id (so that only the server's own folders are touched)."""
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)


def _hold(root: Path) -> int:
    """Create ``root`` and lock it for this server: the lock's file descriptor, to close at the
    end. ValueError when it cannot be created or another server holds it (both would run its jobs)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as err:
        raise ValueError(f"cannot keep jobs in {root} ({err.strerror or err})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ValueError(f"{root} is in use by another jnst serve: give this one another --folder") from None
    return fd


class _JobCheckpoints(Checkpoints):
    """A job's checkpoints, which also end its run (:class:`_Stop`) once a chunk's position is
    recorded when ``ending()`` says so, so that a closing queue can save the newest position, and
    tell ``resumed`` the step a run resumes at."""

    def __init__(self, folder: Path, ending: Callable[[], bool], resumed: Callable[[int], None], **kwargs):
        super().__init__(folder, **kwargs)
        self.ending, self.resumed = ending, resumed

    def begin(self, fingerprint: dict[str, str]) -> Position | None:
        position = super().begin(fingerprint)
        if position is not None:
            self.resumed(position.step)
        return position

    def reached(self, position: Position) -> None:
        super().reached(position)
        if self.ending():
            raise _Stop


class JobQueue:
    """Jobs by id, a first-in first-out queue of waiting ones, and the worker thread.

    ``root`` is the server's own folder, created if need be and held by one server at a time
    (ValueError if another holds it): every job gets a subfolder named by its id, and the jobs
    found there are taken back. ``model`` is built on the first job when not given.
    ``checkpoint_every``: seconds between a running job's checkpoints (0: after every chunk).
    """

    def __init__(self, root: Path, model: Model | None = None, checkpoint_every: float = CHECKPOINT_SECONDS):
        self.root = root
        self.model = model
        self.checkpoint_every = checkpoint_every
        self.jobs: dict[str, Job] = {}
        self.waiting: deque[str] = deque()
        self.lock = threading.Condition()
        self.closed = False
        self._held = _hold(root)
        self._order = itertools.count(self._take_back())
        self.worker = threading.Thread(target=self._work, name="jnst-serve-worker", daemon=True)
        self.worker.start()

    def new_folder(self) -> tuple[str, Path]:
        """A fresh job id and its (created) folder, for the inputs to be saved into."""
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        folder.mkdir()
        return job_id, folder

    def submit(self, job_id: str, folder: Path, inputs: Inputs, settings: str) -> Job:
        """Queue a job for ``inputs``, decoded from the uploads saved into ``folder`` under
        ``settings`` (the JSON text as sent), which its ``job.json`` keeps for a restart."""
        job = Job(job_id, folder, inputs, _total_steps(inputs), labels=inputs.labels)
        with self.lock:
            record = {"settings": settings, "styles": len(inputs.styles), "order": next(self._order)}
            _write_json(folder / JOB_FILE, record)
            self.jobs[job_id] = job
            self.waiting.append(job_id)
            self._drop_old()
            self.lock.notify_all()
        return job

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def status(self, job: Job) -> dict:
        """``job.status`` with its place in the queue (None unless waiting)."""
        with self.lock:
            place = self.waiting.index(job.id) + 1 if job.id in self.waiting else None
            return job.status(place)

    def updates(self, job: Job, seen: int) -> tuple[list[dict], dict]:
        """The statuses of the chunks after the first ``seen``, and the status now."""
        with self.lock:
            return job.chunks[seen:], self.status(job)

    def stop(self, job: Job) -> None:
        """Stop a job: a waiting one leaves the queue, a running one ends after its current chunk."""
        with self.lock:
            job.stop.set()
            if job.id in self.waiting:
                self.waiting.remove(job.id)
                self._finish(job, STOPPED)

    def close(self) -> None:
        """Stop the worker: the running job ends after its current chunk with a checkpoint, and it
        and the waiting ones stay unfinished in their folders, for the next queue to resume."""
        with self.lock:
            self.closed = True
            self.lock.notify_all()
        self.worker.join()
        os.close(self._held)

    def _take_back(self) -> int:
        """Take back the jobs in ``root`` in their order of submission (finished ones as they
        ended, the others queued), removing uploads cut short; the next job's order."""
        found = []
        for folder in self.root.iterdir():
            if not (_is_id(folder.name) and folder.is_dir()):
                continue
            try:
                record = json.loads((folder / JOB_FILE).read_text())
                found.append((int(record["order"]), folder.name, self._restore(folder, record)))
            except (OSError, ValueError, KeyError, TypeError):
                shutil.rmtree(folder, ignore_errors=True)  # no job.json: the server ended mid-upload
        for _, job_id, job in sorted(found):
            self.jobs[job_id] = job
            if job.state == QUEUED:
                self.waiting.append(job_id)
        self._drop_old()
        return max((order for order, _, _ in found), default=-1) + 1

    def _restore(self, folder: Path, record: dict) -> Job:
        """The job in ``folder``: as it ended, or queued again (failed if its inputs no longer pass)."""
        if (folder / FINISHED_FILE).exists():
            ended = json.loads((folder / FINISHED_FILE).read_text())
            pngs = [(folder / f"image-{i}.png").read_bytes() for i in range(ended["images"])]
            regions = (folder / REGIONS_FILE).read_bytes() if (folder / REGIONS_FILE).exists() else None
            return Job(folder.name, folder, None, pngs=pngs, regions=regions, **{k: ended[k] for k in ENDED})
        try:
            settings = settings_lib.parse(record["settings"], record["styles"])
            inputs = read_inputs(folder, settings, record["styles"])
        except ValueError as err:
            job = Job(folder.name, folder, None, 0)
            self._finish(job, FAILED, f"cannot take the job back after a restart: {err}")
            return job
        return Job(folder.name, folder, inputs, _total_steps(inputs), labels=inputs.labels)

    def _finish(self, job: Job, state: str, error: str | None = None) -> None:
        """Mark ``job`` finished (under the lock; its decoded inputs are no longer needed) and
        record its end in its folder: its images, then ``finished.json``; its checkpoint goes."""
        job.state, job.error, job.inputs = state, error, None
        with contextlib.suppress(OSError):  # a full disk: the job would only run again after a restart
            for i, png in enumerate(job.pngs):
                (job.folder / f"image-{i}.png").write_bytes(png)
            _write_json(job.folder / FINISHED_FILE, {**{k: getattr(job, k) for k in ENDED}, "images": len(job.pngs)})
        shutil.rmtree(job.folder / CHECKPOINTS, ignore_errors=True)

    def _drop_old(self) -> None:
        """Forget the oldest finished jobs beyond ``KEEP_FINISHED`` (under the lock), and their folders."""
        finished = [job for job in self.jobs.values() if job.state in FINISHED]
        for job in itertools.islice(finished, max(0, len(finished) - KEEP_FINISHED)):
            del self.jobs[job.id]
            shutil.rmtree(job.folder, ignore_errors=True)

    def _next(self) -> Job | None:
        """The next waiting job, marked running; None once closed."""
        with self.lock:
            while not self.waiting and not self.closed:
                self.lock.wait()
            if self.closed:
                return None
            job = self.jobs[self.waiting.popleft()]
            job.state = RUNNING
            return job

    def _work(self) -> None:
        """The worker thread: run the waiting jobs in order, one at a time, until closed."""
        while (job := self._next()) is not None:
            self._run(job)

    def _run(self, job: Job) -> None:
        """Run one job to its end: done, stopped (last image kept) or failed (one-line error); or,
        when the queue closes, to a checkpoint."""
        folder = job.folder / CHECKPOINTS
        try:
            if self.model is None:
                self.model = Model.create()
            try:
                self._stylize(job, resume=folder.exists())
            except CheckpointError as err:
                why = str(err).replace(f"{folder}/", "").replace(str(folder), "checkpoint")
                with self.lock:
                    job.note = f"restarted from step 0: {why.removesuffix(': delete it to start over')}"
                self._stylize(job, resume=False)
        except _Stop:
            if job.stop.is_set():
                with self.lock:
                    self._finish(job, STOPPED)
            return  # else the queue is closing: the next one resumes the job
        except Exception as err:  # noqa: BLE001 - a failed job must not end the worker
            with self.lock:
                self._finish(job, FAILED, " ".join(f"{type(err).__name__}: {err}".splitlines()))
            return
        with self.lock:
            self._finish(job, DONE)

    def _stylize(self, job: Job, resume: bool) -> None:
        """One run of ``job``, checkpointed into its folder and resumed from there if ``resume``;
        a closing queue ends it with a checkpoint of its last chunk."""

        def resumed(step: int) -> None:
            with self.lock:
                job.step, job.note = step, f"resumed at step {step} from its checkpoint"

        every = self.checkpoint_every
        checkpoints = _JobCheckpoints(
            job.folder / CHECKPOINTS, lambda: job.stop.is_set() or self.closed, resumed,
            every_steps=0 if every else 1, every_seconds=every, resume=resume,
        )  # fmt: skip
        inputs = job.inputs
        masks = None
        if inputs.semantic is not None:  # the same regions every time (a fixed seed): a resume fits its checkpoint
            found = semantic.regions(inputs.content, inputs.styles, inputs.semantic, model=self.model)
            masks, picture = found.masks, png_bytes(semantic.regions_image(inputs.content, inputs.styles, found))
            with contextlib.suppress(OSError):
                (job.folder / REGIONS_FILE).write_bytes(picture)
            with self.lock:
                job.regions = picture
        try:
            stylize_batch([inputs.content], inputs.styles, inputs.configs, model=self.model, checkpoints=checkpoints,
                          callback=lambda step, terms, imgs: self._on_chunk(job, step, terms, imgs),
                          masks=masks)  # fmt: skip
        except _Stop:
            if not job.stop.is_set():
                checkpoints.save_latest()
            raise

    def _on_chunk(self, job: Job, step: int, terms: list[dict], imgs: list[np.ndarray]) -> None:
        """After each compiled chunk: publish the images and progress."""
        pngs = [png_bytes(image) for image in imgs]
        now = time.perf_counter()
        with self.lock:
            job.pngs, job.step = pngs, step
            job.loss = float(terms[0]["total"][-1])
            if job.started is None:
                job.started, job.first_step = now, step
            elif now > job.started:
                job.speed = (step - job.first_step) / (now - job.started)
            job.chunks.append(job.status(None))
