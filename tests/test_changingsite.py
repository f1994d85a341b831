"""The fixture site for recapture tests answers as it promises, before and after change()."""

from __future__ import annotations

import html
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message

import pytest

from .support.changingsite import NOTICE_TITLE, REMOVED_PARAGRAPH, ChangingSite


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a 3xx then comes back as an HTTPError: its status and Location are what is tested


# no proxies from the environment: every request goes straight to 127.0.0.1
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def get(url: str, timeout: float = 10) -> tuple[int, Message, bytes]:
    try:
        response = OPENER.open(url, timeout=timeout)
    except urllib.error.HTTPError as error:
        response = error
    with response:  # closed in every case: warnings are errors, ResourceWarning too
        return response.status, response.headers, response.read()


def title(page: bytes) -> str:
    found = re.search(r"<title>(.*?)</title>", page.decode())
    assert found, page
    return html.unescape(found[1])


def article(page: bytes) -> str:
    found = re.search(r"<article>.*</article>", page.decode(), re.S)
    assert found, page
    return found[0]


def paragraphs(page: bytes) -> list[str]:
    return [html.unescape(p) for p in re.findall(r"<p>(.*?)</p>", article(page))]


def og_image(page: bytes) -> str:
    found = re.search(r'<meta property="og:image" content="([^"]+)">', page.decode())
    assert found, page
    return found[1]


@pytest.fixture
def changing() -> Iterator[ChangingSite]:
    site = ChangingSite()
    yield site
    site.stop()


def test_first_state(changing: ChangingSite) -> None:
    pages = {}
    for name in ChangingSite.NAMES:
        status, headers, body = get(changing.article(name))
        assert (status, headers["Content-Type"]) == (200, "text/html; charset=utf-8"), name
        assert int(headers["Content-Length"]) == len(body)
        text = body.decode()
        for part in ('<meta charset="utf-8">', '<meta name="viewport"', '<a href="/">', '<a href="/news/">',
                     '<link rel="stylesheet" href="/static/site.css">', "<figure><img src="):
            assert part in text, (name, part)
        assert 4 <= len(paragraphs(body)) <= 6 and sum(map(len, paragraphs(body))) >= 600, name
        pages[name] = body
    assert sum(bool(re.search("[\u4e00-\u9fff]", paragraphs(page)[0])) for page in pages.values()) >= 5

    images = {}
    for name, page in pages.items():  # every lead image is a PNG of its own, and og:image names it
        lead = og_image(page).removeprefix(changing.url)
        assert f'<img src="{lead}"' in page.decode()
        status, headers, body = get(changing.url + lead)
        assert (status, headers["Content-Type"], body[:8]) == (200, "image/png", b"\x89PNG\r\n\x1a\n"), name
        images[lead] = body
    assert len(set(images.values())) == len(images) == len(ChangingSite.NAMES)

    assert get(changing.article("unchanged"))[2] == get(changing.article("unchanged"))[2] == pages["unchanged"]
    noisy = [get(changing.article("noisy"))[2] for _ in range(2)]
    assert len({pages["noisy"], *noisy}) == 3
    assert {(title(p), article(p), og_image(p)) for p in noisy} == {(title(pages["noisy"]), article(pages["noisy"]),
                                                                      og_image(pages["noisy"]))}
    assert '<aside class="ad">Ad number 3</aside>' in noisy[1].decode()

    for path in ("/", "/news/", "/static/site.css", "/news/2024/moved-new.html"):
        assert get(changing.url + path)[0] == 200, path
    status, _, body = get(changing.url + "/news/2024/nothing.html")
    assert (status, title(body)) == (404, NOTICE_TITLE)
    assert changing.hits["/news/2024/noisy.html"] == 3 and changing.hits["/images/2024/lead.png"] == 1


def test_second_state(changing: ChangingSite) -> None:
    before = {name: get(changing.article(name))[2] for name in ("unchanged", "headline", "paragraph", "lead", "moved")}
    changing.change()
    changing.change()  # idempotent

    redirects = {"front": (301, "/"), "section": (302, "/news/"), "moved": (301, "/news/2024/moved-new.html")}
    for name, (code, location) in redirects.items():
        status, headers, _ = get(changing.article(name))
        assert (status, headers["Location"]) == (code, location), name
    for name, code in {"gone404": 404, "gone410": 410, "stub": 200}.items():
        status, headers, body = get(changing.article(name))
        assert (status, headers["Content-Type"], title(body)) == (code, "text/html; charset=utf-8", NOTICE_TITLE)
        assert int(headers["Content-Length"]) == len(body)
    assert "Not Found" in get(changing.article("gone404"))[2].decode()
    stub = get(changing.article("stub"))[2].decode()
    assert "该文章已不存在" in stub and '<a href="/news/">' in stub and "og:image" not in stub

    assert get(changing.article("unchanged"))[2] == before["unchanged"]
    headline = get(changing.article("headline"))[2]
    assert title(headline) != title(before["headline"]) and "<h1>" in article(headline)
    assert article(headline).split("</h1>")[1] == article(before["headline"]).split("</h1>")[1]
    paragraph = get(changing.article("paragraph"))[2]
    assert REMOVED_PARAGRAPH in paragraphs(before["paragraph"]) and REMOVED_PARAGRAPH not in paragraph.decode()
    assert paragraphs(paragraph) == [p for p in paragraphs(before["paragraph"]) if p != REMOVED_PARAGRAPH]
    lead = get(changing.article("lead"))[2]
    assert og_image(lead) != og_image(before["lead"]) and paragraphs(lead) == paragraphs(before["lead"])
    assert get(og_image(lead))[2] != get(og_image(before["lead"]))[2]
    moved = get(changing.url + "/news/2024/moved-new.html")[2]
    assert (title(moved), paragraphs(moved)) == (title(before["moved"]), paragraphs(before["moved"]))


def test_flaky_stalls_on_its_first_load_after_change(changing: ChangingSite) -> None:
    changing.stall = 0.5
    started = time.monotonic()
    first = get(changing.article("flaky"))
    assert first[0] == 200 and time.monotonic() - started < 0.4  # no stall before change()
    changing.change()
    started = time.monotonic()
    assert get(changing.article("flaky"))[2] == first[2]
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    assert get(changing.article("flaky"))[2] == first[2]
    assert time.monotonic() - started < 0.4


def test_stop_ends_a_stall(changing: ChangingSite) -> None:
    changing.change()  # the default stall: 30 s
    answers: list[int] = []
    client = threading.Thread(target=lambda: answers.append(get(changing.article("flaky"))[0]))
    client.start()
    deadline = time.monotonic() + 5
    while not changing.hits["/news/2024/flaky.html"] and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    changing.stop()
    client.join(5)
    assert answers == [200] and time.monotonic() - started < 3


def test_revert_restores_the_first_state(changing: ChangingSite) -> None:
    names = [name for name in ChangingSite.NAMES if name != "noisy"]
    before = {name: get(changing.article(name))[2] for name in names}
    changing.change()
    changing.revert()  # disarms the stall (the default, 30 s): flaky answers at once again
    started = time.monotonic()
    assert {name: get(changing.article(name))[2] for name in names} == before
    assert get(changing.article("noisy"))[0] == 200 and time.monotonic() - started < 5
