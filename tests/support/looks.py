"""How a page looks in headless Chromium, live and replayed: screenshots of a replay framed (pywb's
banner around an iframe) and unframed (`mp_`, in an iframe of a page of the replay's own origin,
as pywb wants it), the requests each made, and a pixel comparison with a tolerance for antialiasing."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image, ImageChops

from .browser import CHROMIUM_ARGS, chromium_path

VIEWPORTS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1200, "height": 900}, "device_scale_factor": 1},
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True,
              "has_touch": True},
}
# every image decoded (no placeholder of a lazy image left) and the web fonts loaded
LOADED = """() => document.readyState === "complete" && document.fonts.status === "loaded"
    && [...document.images].every(i => i.complete && i.naturalWidth > 0 && !i.src.startsWith("data:"))"""
# a pixel differs when one of its channels differs by more than this
CHANNEL = 48


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A page in a context of its own, its requests recorded: those that failed, the answers, and
    those the page cancelled itself (a browser drops an image it no longer wants, such as the
    srcset candidate it first chose before the viewport settled: not a failure of the archive)."""

    def __init__(self, browser: Any, kind: str, ready: str = LOADED) -> None:
        self.context = browser.new_context(**VIEWPORTS[kind])
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.ready = ready
        self.failed: list[str] = []
        self.aborted: list[str] = []
        self.answered: dict[str, int] = {}
        self.page.on("requestfailed", self._failed)
        self.page.on("response", lambda response: self.answered.__setitem__(response.url, response.status))

    def _failed(self, request: Any) -> None:
        failure = str(request.failure)
        (self.aborted if "ERR_ABORTED" in failure else self.failed).append(f"{request.url} {failure}")

    def __enter__(self) -> Watched:
        return self

    def __exit__(self, *exc: object) -> None:
        self.context.close()

    def live(self, url: str, size: dict[str, int], full_page: bool = False) -> bytes:
        """The live page's screenshot at `size` (CSS pixels); all of it with `full_page`."""
        self.page.set_viewport_size(size)
        self.page.goto(url)
        self.page.wait_for_function(self.ready)
        return bytes(self.page.screenshot(full_page=full_page))

    def height(self) -> int:
        """The height of the page loaded (CSS pixels)."""
        return int(self.page.evaluate("document.documentElement.scrollHeight"))

    def framed(self, replay_url: str) -> tuple[bytes, dict[str, int]]:
        """The archived page's screenshot inside pywb's frame, and the frame's size."""
        self.page.goto(replay_url)
        element = self.page.wait_for_selector("iframe")
        frame = element.content_frame()
        assert frame is not None
        frame.wait_for_function(self.ready)
        box = element.bounding_box()
        return bytes(element.screenshot()), {"width": round(box["width"]), "height": round(box["height"])}

    def unframed(self, base: str, mp_url: str, size: dict[str, int]) -> bytes:
        """The `mp_` page's screenshot at `size`, loaded in an iframe of the replay's origin."""
        self.page.goto(base + "/")
        self.page.set_content(
            f'<html><body style="margin:0"><iframe src="{mp_url}" style="border:0;width:{size["width"]}px;'
            f'height:{size["height"]}px"></iframe></body></html>')
        element = self.page.wait_for_selector("iframe")
        frame = element.content_frame()
        assert frame is not None
        frame.wait_for_function(self.ready)
        return bytes(element.screenshot())


def mp_url(base: str, replay_path: str) -> str:
    """The unframed replay URL of a framed replay path (/news/<ts>/<url> -> /news/<ts>mp_/<url>)."""
    collection, stamp, original = replay_path.lstrip("/").split("/", 2)
    return f"{base}/{collection}/{stamp}mp_/{original}"


def differing(a: bytes, b: bytes) -> float:
    """The share of pixels that differ between two screenshots (1.0 when their sizes differ)."""
    first, second = Image.open(io.BytesIO(a)).convert("RGB"), Image.open(io.BytesIO(b)).convert("RGB")
    if first.size != second.size:
        return 1.0
    diff = ImageChops.difference(first, second).point(lambda v: 255 if v > CHANNEL else 0).convert("L")
    return diff.histogram()[255] / (first.size[0] * first.size[1])
