"""``jnst serve``'s page in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright uploads a bad file and sees the server's error, then two images; starts a 128 px,
20-step job, sees the preview change, reloads the page mid-job (it reconnects by id), waits
for the end and downloads a valid PNG.

Skips with the reason when the serve extra, Playwright or Chromium is missing. With
``JNST_SERVE_SCREENSHOT=docs/serve.png`` the finished page's screenshot goes there (docs/serve.md's).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the serve extra is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from jnst.serve import create_app  # noqa: E402

CHROMIUM = os.environ.get("JNST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server_url(model, tmp_path_factory):
    """A live server on a free localhost port, in a thread, sharing the tests' model."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(tmp_path_factory.mktemp("serve"), model), port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def page():
    if CHROMIUM is None:
        pytest.skip("no Chromium (apt-get install chromium, or set JNST_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(accept_downloads=True, viewport={"width": 1000, "height": 640})
        yield context.new_page()
        browser.close()


def choose(page, shared_images: Path) -> None:
    """Pick the two images and a 128 px, 20-step run of the preview preset."""
    page.set_input_files("#content-file", str(shared_images / "tubingen.jpg"))
    page.set_input_files("#style-file", str(shared_images / "starry_night.jpg"))
    page.select_option("#preset", "preview")
    page.fill("#size", "128")
    page.fill("#steps", "20")


def test_the_page_stylizes_live_reconnects_and_downloads(page, server_url, shared_images, tmp_path):
    previews: list[str] = []  # digests of the preview PNGs the page loaded, in order

    def on_response(response) -> None:
        if "/image?item=0" in response.url and response.status == 200:
            digest = hashlib.sha256(response.body()).hexdigest()
            if not previews or previews[-1] != digest:
                previews.append(digest)

    page.on("response", on_response)
    page.goto(server_url)
    page.wait_for_selector("#preset option[value=preview]", state="attached")
    choose(page, shared_images)
    assert page.locator("#content-thumbs img").count() == 1 and page.locator("#style-thumbs img").count() == 1
    # A bad file: the server's one-line error shows on the page, and nothing starts.
    page.set_input_files("#style-file", {"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture"})
    page.click("#start")
    page.wait_for_function("document.querySelector('#error').textContent !== ''")
    assert page.locator("#error").text_content() == "style-0: not an image Pillow can read"
    assert page.evaluate("location.hash") == ""
    page.set_input_files("#style-file", str(shared_images / "starry_night.jpg"))
    page.click("#start")
    page.wait_for_function("location.hash.startsWith('#job=')")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('running')", timeout=120_000)
    page.wait_for_function("document.querySelector('#preview').src !== ''", timeout=120_000)
    job_hash = page.evaluate("location.hash")
    page.reload()  # the page finds the job by the id in its URL and follows it again
    assert page.evaluate("location.hash") == job_hash
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('done')", timeout=120_000)
    assert page.locator("#status").text_content().startswith("done · step 20 / 20")
    assert page.locator("#error").text_content() == ""
    changes = len(previews) - 1
    assert changes >= 2, f"the preview changed {changes} times"
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "download.png"
    download.value.save_as(saved)
    with Image.open(saved) as img:
        assert img.format == "PNG" and max(img.size) == 128
        img.verify()
    # For the screenshot, the form as it was (a reload forgets the chosen files and settings).
    choose(page, shared_images)
    shot = Path(os.environ.get("JNST_SERVE_SCREENSHOT") or tmp_path / "serve.png")
    page.screenshot(path=str(shot), full_page=True)
    print(f"browser: {len(previews)} distinct previews ({changes} changes), downloaded {saved.stat().st_size} bytes")


def test_the_page_shows_the_regions_beside_the_preview(page, server_url, shared_images):
    page.goto(server_url)
    page.wait_for_selector("#preset option[value=preview]", state="attached")
    choose(page, shared_images)
    assert page.locator("#regions-figure").is_hidden()
    page.select_option("#semantic", "2")
    page.fill("#steps", "4")
    page.click("#start")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('done')", timeout=120_000)
    page.wait_for_function("document.querySelector('#regions').naturalWidth > 0", timeout=30_000)
    assert page.locator("#regions-figure").is_visible()
    preview = page.evaluate("document.querySelector('#preview').naturalWidth")
    assert page.evaluate("document.querySelector('#regions').naturalWidth") > 2 * preview  # photo and painting
