"""The ``jnst serve`` web app: the page, its static files and the JSON API over a :class:`JobQueue`.

Bad input gets a 4xx with ``{"error": "one line"}``. Uploads are saved under server-chosen
names into the job's own folder (the client's file names are never used; a restart rebuilds the
job from them, see :mod:`jnst.serve.jobs`) and decoded with :mod:`jnst.images`; a request
larger than ``max_upload`` bytes is refused (413) before it is read.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from jnst.config import PRESETS
from jnst.serve import settings as settings_lib
from jnst.serve.inputs import Inputs, input_paths, read_inputs
from jnst.serve.jobs import FINISHED, Job, JobQueue
from jnst.vgg import Model

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 32 * 1024 * 1024  # bytes in one job's request: the content and its styles
MAX_STYLES = 8
EVENT_POLL_S = 0.2  # how often the live stream looks for news


def _error(request: Request, exc: Exception) -> JSONResponse:
    """Every HTTP error as ``{"error": "..."}`` on one line."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": " ".join(str(exc.detail).splitlines())}, exc.status_code, headers=exc.headers)


def _save(upload: object, path: Path, what: str) -> None:
    """Copy an uploaded file to ``path`` (a server-chosen name)."""
    if not isinstance(upload, UploadFile):
        raise ValueError(f"{what} must be a file")
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out)


def _load(folder: Path, content: object, styles: list, settings_text: str) -> Inputs:
    """Save and decode a job's uploads into ``folder`` and check its settings; ValueError if bad."""
    if not 1 <= len(styles) <= MAX_STYLES:
        raise ValueError(f"give 1 to {MAX_STYLES} style images, got {len(styles)}")
    settings = settings_lib.parse(settings_text, len(styles))
    content_path, *style_paths = input_paths(folder, len(styles))
    _save(content, content_path, "content")
    for upload, path in zip(styles, style_paths, strict=True):
        _save(upload, path, "style")
    return read_inputs(folder, settings, len(styles))


def create_app(root: Path, model: Model | None = None, max_upload: int = MAX_UPLOAD) -> Starlette:
    """The app; jobs keep their files under ``root``, where a restart finds the unfinished ones
    to resume (see :class:`JobQueue`; ValueError if another server holds it), and run on
    ``model`` (default: built on the first job)."""
    queue = JobQueue(root, model)

    def job_of(request: Request) -> Job:
        job = queue.get(request.path_params["job_id"])
        if job is None:
            raise HTTPException(404, "no such job")
        return job

    async def index(_: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def presets(_: Request) -> Response:
        """What the page offers: presets with their descriptions, sizes and sweepable weights."""
        return JSONResponse(
            {
                "presets": {name: text for name, (_, text) in PRESETS.items()},
                "size": {"min": settings_lib.MIN_SIZE, "max": settings_lib.MAX_SIZE},
                "max_upload": max_upload,
                "max_styles": MAX_STYLES,
            }
        )

    async def create_job(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            raise HTTPException(411, "a job's upload needs a Content-Length")
        if int(length) > max_upload:
            raise HTTPException(413, f"upload of {int(length)} bytes is over this server's limit of {max_upload}")
        async with request.form(max_files=MAX_STYLES + 1, max_fields=8) as form:
            if "content" not in form:
                raise HTTPException(400, "give a content image (field 'content')")
            job_id, folder = queue.new_folder()
            settings = str(form.get("settings", "{}"))
            try:
                inputs = await run_in_threadpool(_load, folder, form["content"], form.getlist("style"), settings)
            except ValueError as err:
                shutil.rmtree(folder, ignore_errors=True)
                raise HTTPException(400, str(err)) from None
        job = queue.submit(job_id, folder, inputs, settings)
        return JSONResponse({"id": job.id}, 201)

    async def job_status(request: Request) -> Response:
        return JSONResponse(queue.status(job_of(request)))

    async def job_image(request: Request) -> Response:
        job = job_of(request)
        pngs = job.pngs
        item = request.query_params.get("item", "0")
        if not item.isdigit() or int(item) >= max(1, len(pngs)):
            raise HTTPException(404, f"no image {item!r}: this job has {max(1, len(pngs))}")
        if not pngs:
            raise HTTPException(404, "no image yet: the first chunk has not finished")
        return Response(pngs[int(item)], media_type="image/png", headers={"Cache-Control": "no-store"})

    async def job_regions(request: Request) -> Response:
        """The photo's and the paintings' regions of a job with ``semantic`` settings."""
        job = job_of(request)
        if job.regions is None:
            raise HTTPException(404, "no regions: this job has no semantic setting, or has not found them yet")
        return Response(job.regions, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def job_events(request: Request) -> Response:
        job = job_of(request)

        async def stream() -> AsyncIterator[str]:
            """The job's status as a server-sent event at every chunk's end and whenever it
            changes otherwise, until it finishes: a slow reader gets every chunk, late."""
            seen, last = 0, None
            while True:
                chunks, now = queue.updates(job, seen)
                seen += len(chunks)
                for status in [*chunks, now]:
                    if status != last:
                        yield f"data: {json.dumps(status)}\n\n"
                        last = status
                if now["state"] in FINISHED:
                    return
                await asyncio.sleep(EVENT_POLL_S)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def stop_job(request: Request) -> Response:
        job = job_of(request)
        queue.stop(job)
        return JSONResponse(queue.status(job))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(queue.close)

    routes = [
        Route("/", index),
        Route("/api/presets", presets),
        Route("/api/jobs", create_job, methods=["POST"]),
        Route("/api/jobs/{job_id}", job_status),
        Route("/api/jobs/{job_id}", stop_job, methods=["DELETE"]),
        Route("/api/jobs/{job_id}/image", job_image),
        Route("/api/jobs/{job_id}/regions", job_regions),
        Route("/api/jobs/{job_id}/events", job_events),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _error}, lifespan=lifespan)
    app.state.queue = queue
    return app
