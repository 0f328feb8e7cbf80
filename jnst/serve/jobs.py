"""Jobs for ``jnst serve``: their state, a queue, and the one worker thread that runs them.

Jobs run one at a time (the device holds one optimisation at a time) through
:func:`jnst.stylize_batch` with a callback, on one :class:`jnst.vgg.Model` built once, so a job
at a size seen before reuses the compiled programs. The callback publishes each compiled
chunk's image (PNG bytes) and progress, and ends the run early when the job is stopped, keeping
the last image. A job's inputs live in its own folder under the queue's folder, named by the
server. Jobs are kept in memory: a browser reload reconnects by id, a server restart loses them.

Resuming after a restart (issue "Runs that survive"): when ``jnst/checkpoint.py`` lands, the
worker would save a checkpoint into ``job.folder`` from :meth:`JobQueue._on_chunk`, and a new
``JobQueue`` would re-submit the folders it finds with their checkpoints; nothing here depends
on it yet.
"""

from __future__ import annotations

import io
import itertools
import shutil
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from jnst import images
from jnst.config import StyleConfig
from jnst.stylize import pass_plan, stylize_batch
from jnst.vgg import Model

QUEUED, RUNNING, DONE, STOPPED, FAILED = "queued", "running", "done", "stopped", "failed"
FINISHED = (DONE, STOPPED, FAILED)
# Finished jobs kept (with their images and folders) before the oldest are dropped.
KEEP_FINISHED = 50


class _Stop(Exception):
    """Raised from the chunk callback to end a stopped job's run, keeping its last image."""


@dataclass(frozen=True)
class Inputs:
    """What a job paints: decoded inputs and one config per output image (several: a sweep).

    ``labels`` name the outputs (``"style_weight 0.3"``), empty for a single image.
    """

    content: np.ndarray
    styles: list[np.ndarray]
    configs: list[StyleConfig]
    labels: list[str] = field(default_factory=list)


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

    def status(self, place: int | None) -> dict:
        """The JSON the API returns: state, progress, place in the queue (1: next), error."""
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
        }


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W, 3) float image in [0, 1] as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(images.to_uint8(image)).save(buf, format="PNG")
    return buf.getvalue()


class JobQueue:
    """Jobs by id, a first-in first-out queue of waiting ones, and the worker thread.

    ``root`` is the server's own folder: every job gets a subfolder named by its id.
    ``model`` is built on the first job when not given.
    """

    def __init__(self, root: Path, model: Model | None = None):
        self.root = root
        self.model = model
        self.jobs: dict[str, Job] = {}
        self.waiting: deque[str] = deque()
        self.lock = threading.Condition()
        self.closed = False
        self.worker = threading.Thread(target=self._work, name="jnst-serve-worker", daemon=True)
        self.worker.start()

    def new_folder(self) -> tuple[str, Path]:
        """A fresh job id and its (created) folder, for the inputs to be saved into."""
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        folder.mkdir()
        return job_id, folder

    def submit(self, job_id: str, folder: Path, inputs: Inputs) -> Job:
        """Queue a job for ``inputs``, whose files were saved into ``folder``."""
        hw = inputs.content.shape[:2]
        total = sum(pass_plan(hw, [s.shape[:2] for s in inputs.styles], inputs.configs[0])[1])
        job = Job(job_id, folder, inputs, total, labels=inputs.labels)
        with self.lock:
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

    def stop(self, job: Job) -> None:
        """Stop a job: a waiting one leaves the queue, a running one ends after its current chunk."""
        with self.lock:
            job.stop.set()
            if job.id in self.waiting:
                self.waiting.remove(job.id)
                self._finish(job, STOPPED)

    def close(self) -> None:
        """Stop the worker (after the current chunk) and delete every job's folder."""
        with self.lock:
            self.closed = True
            for job in self.jobs.values():
                job.stop.set()
            self.lock.notify_all()
        self.worker.join()
        shutil.rmtree(self.root, ignore_errors=True)

    def _finish(self, job: Job, state: str, error: str | None = None) -> None:
        """Mark ``job`` finished (under the lock); its decoded inputs are no longer needed."""
        job.state, job.error, job.inputs = state, error, None

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
        """Run one job to its end: done, stopped (last image kept) or failed (one-line error)."""
        inputs = job.inputs
        try:
            if self.model is None:
                self.model = Model.create()
            stylize_batch([inputs.content], inputs.styles, inputs.configs, model=self.model,
                          callback=lambda step, terms, imgs: self._on_chunk(job, step, terms, imgs))  # fmt: skip
        except _Stop:
            with self.lock:
                self._finish(job, STOPPED)
            return
        except Exception as err:  # noqa: BLE001 - a failed job must not end the worker
            with self.lock:
                self._finish(job, FAILED, " ".join(f"{type(err).__name__}: {err}".splitlines()))
            return
        with self.lock:
            self._finish(job, DONE)

    def _on_chunk(self, job: Job, step: int, terms: list[dict], imgs: list[np.ndarray]) -> None:
        """After each compiled chunk: publish the images and progress; end the run if stopped."""
        pngs = [png_bytes(image) for image in imgs]
        now = time.perf_counter()
        with self.lock:
            job.pngs, job.step = pngs, step
            job.loss = float(terms[0]["total"][-1])
            if job.started is None:
                job.started, job.first_step = now, step
            elif now > job.started:
                job.speed = (step - job.first_step) / (now - job.started)
        if job.stop.is_set():
            raise _Stop
