"""The collection page (/<coll>/): archiver's search.html over the static JSON that index/listing.py writes."""

from __future__ import annotations

import json
import os
import stat
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import astuple, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from archiver import _fs
from archiver.capture.run import capture
from archiver.collection import Collection
from archiver.config import Config
from archiver.index import listing
from archiver.index.build import build_index
from archiver.index.listing import MANIFEST, listing_dir, page_name, write_listing
from archiver.index.metadata import FIELDS, Article, Store
from archiver.init import init

from .support.newsite import NewsSite, seed_document
from .support.replaying import replay_server
from .test_templates import watched_page

XSS_TITLE = "<img src=x onerror=alert(1)>"
BASE = Article(
    url="", title="", seed_timestamp=None, seed_time="", page_title="", published="", capture_time="",
    status=200, final_url="", lead_image_url="", lead_image_status=None, lead_image_error="", warc_file="a.warc.gz",
    warc_offset=0,
    warc_length=1, payload_digest="", replay_path="", source="seeds/x.txt", error="", attempts=1,
)


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def synthetic(i: int, seed: int | None, capture: int, **changes: Any) -> Article:
    """Article i, seeded at epoch second `seed` (None: no seed time), captured at second `capture`."""
    url = f"https://example.org/news/{i:06d}.html"
    captured = iso(capture)
    stamp = captured.replace("-", "").replace(":", "").replace("T", "").replace("Z", "")
    return replace(BASE, url=url, title=f"标题 {i}", seed_timestamp=None if seed is None else seed * 1000,
                   seed_time="" if seed is None else iso(seed), capture_time=captured,
                   lead_image_url=f"https://img.example.org/{i}.jpg", lead_image_status=200,
                   replay_path=f"/news/{stamp}/{url}", **changes)


def fill(collection: Collection, articles: Iterator[Article] | list[Article]) -> None:
    collection.create()
    with Store(collection.db_path) as store, store.transaction():
        marks = ", ".join("?" for _ in FIELDS)
        store.db.executemany(f"INSERT OR REPLACE INTO articles ({', '.join(FIELDS)}) VALUES ({marks})",
                             (astuple(a) for a in articles))


def read(folder: Path, name: str) -> Any:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def all_rows(folder: Path, order: str) -> list[dict[str, Any]]:
    manifest = read(folder, MANIFEST)
    rows: list[dict[str, Any]] = []
    for page in range(manifest["pages"]):
        body = read(folder, page_name(order, page))
        assert body["generation"] == manifest["orders"][order]["generations"][page] and body["page"] == page
        assert body["start"] == page * manifest["page_size"]
        rows.extend(dict(zip(manifest["fields"], row, strict=True)) for row in body["rows"])
    return rows


@pytest.fixture
def collection(tmp_path: Path) -> Collection:
    return Collection.at(tmp_path, "news")


def test_manifest_pages_and_both_sort_orders(collection: Collection) -> None:
    start = 1_696_553_101
    articles = [synthetic(i, start + (7 * i) % 11 * 60, start + 86400 + (5 * i) % 11 * 60) for i in range(11)]
    articles[3] = replace(articles[3], seed_timestamp=None, seed_time="")  # a URL-list seed: no seed time
    articles[4] = replace(articles[4], lead_image_status=404, lead_image_error="http_404")  # no thumbnail
    articles[5] = replace(articles[5], error="http_404", status=404, title="",
                          page_title="", replay_path="/news/20231006004501/https://feed-copy.invalid/https/x")
    fill(collection, articles)

    report = write_listing(collection, page_size=4)
    assert report is not None and (report.count, report.pages, report.page_size) == (11, 3, 4)
    folder = listing_dir(collection)
    assert folder == collection.path / "static" / "articles"
    manifest = read(folder, MANIFEST)
    assert {k: manifest[k] for k in ("version", "count", "page_size", "pages", "fields")} == {
        "version": 3, "count": 11, "page_size": 4, "pages": 3, "fields": [
            "title", "url", "seed_time", "capture_time", "status", "error", "replay_path", "thumbnail",
            "removed_at", "versions"]}
    written = [manifest["generation"]] * 3  # every page of this (first) listing
    assert manifest["orders"] == {"seed": {"prefix": "by-seed-", "timed": 10, "generations": written},
                                  "capture": {"prefix": "by-capture-", "timed": 11, "generations": written}}
    assert manifest["generated"].endswith("Z") and len(manifest["generation"]) == 16
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [MANIFEST] + [page_name(o, n) for o in ("seed", "capture") for n in range(3)])
    assert [len(read(folder, page_name("seed", n))["rows"]) for n in range(3)] == [4, 4, 3]

    by_seed = all_rows(folder, "seed")
    keys = [(a.seed_timestamp is None, a.seed_timestamp or 0, a.url) for a in articles]
    expected = [articles[i].url for i in sorted(range(11), key=lambda i: keys[i])]
    assert [r["url"] for r in by_seed] == expected
    assert by_seed[-1]["url"] == articles[3].url and by_seed[-1]["seed_time"] == ""  # untimed rows last
    by_capture = all_rows(folder, "capture")
    assert [r["url"] for r in by_capture] == [a.url for a in sorted(articles, key=lambda a: (a.capture_time, a.url))]

    rows = {r["url"]: r for r in by_seed}
    first = rows[articles[0].url]
    stamp = articles[0].replay_path.split("/")[2]
    assert first == {
        "title": "标题 0", "url": articles[0].url, "seed_time": articles[0].seed_time,
        "capture_time": articles[0].capture_time, "status": 200, "error": "",
        "replay_path": articles[0].replay_path,
        "thumbnail": f"/news/{stamp}im_/https://img.example.org/0.jpg", "removed_at": "", "versions": "[]",
    }
    assert rows[articles[4].url]["thumbnail"] == ""  # lead image not captured
    failed = rows[articles[5].url]
    assert (failed["title"], failed["status"], failed["error"]) == (articles[5].url, 404, "http_404")
    assert failed["replay_path"] == articles[5].replay_path  # the feed copy's


def test_thumbnails_only_for_captured_http_images(collection: Collection) -> None:
    good = synthetic(0, 1_700_000_000, 1_704_164_645)  # captured 2024-01-02T03:04:05Z
    assert good.capture_time == "2024-01-02T03:04:05Z"
    fill(collection, [
        good,
        replace(synthetic(1, 1_700_000_001, 1_704_164_645), lead_image_error="timeout"),
        replace(synthetic(2, 1_700_000_002, 1_704_164_645), lead_image_url="javascript:alert(1)"),
        replace(synthetic(3, 1_700_000_003, 1_704_164_645), lead_image_url=""),
        replace(synthetic(4, 1_700_000_004, 1_704_164_645), lead_image_url="HTTPS://img.example.org/4.jpg"),
        replace(synthetic(5, 1_700_000_005, 1_704_164_645), capture_time=""),
    ])
    write_listing(collection)
    thumbnails = [r["thumbnail"] for r in all_rows(listing_dir(collection), "seed")]
    assert thumbnails == ["/news/20240102030405im_/https://img.example.org/0.jpg", "", "", "",
                          "/news/20240102030405im_/HTTPS://img.example.org/4.jpg", ""]


def test_rewrite_is_atomic_and_drops_pages_past_the_end(collection: Collection,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fill(collection, [synthetic(i, 1_700_000_000 + i, 1_700_100_000 + i) for i in range(10)])
    write_listing(collection, page_size=3)
    folder = listing_dir(collection)
    before = read(folder, MANIFEST)
    assert before["pages"] == 4
    for path in folder.iterdir():  # readable by pywb, whatever the umask
        assert stat.S_IMODE(path.stat().st_mode) == 0o644

    # a run that dies half-way leaves the old manifest whole and no temporary files
    real_replace = os.replace
    calls = []

    def failing_replace(src: str, dst: Path) -> None:
        calls.append(Path(dst).name)
        if len(calls) == 3:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(_fs.os, "replace", failing_replace)  # every atomic write renames through archiver._fs
    with pytest.raises(OSError, match="disk full"):
        write_listing(collection, page_size=3)
    monkeypatch.undo()
    assert read(folder, MANIFEST) == before
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    assert calls[:2] == [page_name("seed", 0), page_name("seed", 1)]  # every file goes in by rename

    # fewer rows: the pages past the new end go, the manifest comes after the pages
    with Store(collection.db_path) as store:
        store.db.execute("DELETE FROM articles WHERE url > 'https://example.org/news/000003.html'")
    names: list[str] = []
    monkeypatch.setattr(_fs.os, "replace", lambda src, dst: (names.append(Path(dst).name), real_replace(src, dst)))
    report = write_listing(collection, page_size=3)
    assert report is not None and (report.count, report.pages) == (4, 2)
    assert names[-1] == MANIFEST
    after = read(folder, MANIFEST)
    assert after["generation"] != before["generation"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [MANIFEST] + [page_name(o, n) for o in ("seed", "capture") for n in range(2)])
    assert [r["title"] for r in all_rows(folder, "seed")] == ["标题 0", "标题 1", "标题 2", "标题 3"]


def test_an_empty_or_missing_index_gives_an_empty_list(collection: Collection) -> None:
    collection.create()
    report = write_listing(collection)  # no metadata.sqlite at all
    assert report is not None and (report.count, report.pages) == (0, 0)
    manifest = read(listing_dir(collection), MANIFEST)
    assert (manifest["count"], manifest["pages"], manifest["orders"]["seed"]["timed"]) == (0, 0, 0)
    assert sorted(p.name for p in listing_dir(collection).iterdir()) == [MANIFEST]


def test_unchanged_runs_write_only_a_missing_listing(collection: Collection) -> None:
    fill(collection, [synthetic(0, 1_700_000_000, 1_700_000_100)])
    assert write_listing(collection, changed=False) is not None  # none yet: written
    generation = read(listing_dir(collection), MANIFEST)["generation"]
    assert write_listing(collection, changed=False) is None
    assert read(listing_dir(collection), MANIFEST)["generation"] == generation
    with pytest.raises(ValueError):
        write_listing(collection, page_size=0)


def test_a_run_rewrites_only_the_pages_from_its_first_change(collection: Collection) -> None:
    """Rows put through the metadata index note where they sort; the next listing keeps the pages
    wholly before the first change (bytes and generation), and reads as a full rewrite would."""
    start = 1_700_000_000
    collection.create()
    folder = listing_dir(collection)

    def pages(order: str) -> list[bytes]:
        return [(folder / page_name(order, n)).read_bytes() for n in range(read(folder, MANIFEST)["pages"])]

    def as_full_rewrite_reads() -> None:
        rows = {order: all_rows(folder, order) for order in ("seed", "capture")}
        write_listing(collection, page_size=3)  # read-only: every page from scratch
        assert {order: all_rows(folder, order) for order in ("seed", "capture")} == rows

    with Store(collection.db_path) as store:
        with store.transaction():
            for i in range(10):
                store.put(synthetic(i, start + i * 60, start + 86400 + i * 60))
        write_listing(collection, store, page_size=3)
        before = {order: pages(order) for order in ("seed", "capture")}

        with store.transaction():  # two new articles, newest in both orders: rows 10 and 11
            for i in (10, 11):
                store.put(synthetic(i, start + i * 60, start + 86400 + i * 60))
        write_listing(collection, store, page_size=3)
        manifest = read(folder, MANIFEST)
        for order in ("seed", "capture"):
            assert pages(order)[:3] == before[order][:3]  # rows 0-8: untouched files
            generations = manifest["orders"][order]["generations"]
            assert generations[3] == manifest["generation"] != generations[0] and len(generations) == 4
        assert manifest["count"] == 12
        assert store.listing_changes() == {}
        as_full_rewrite_reads()

        with store.transaction():  # article 7 captured again: from row 7 to the end by capture time
            store.put(synthetic(7, start + 7 * 60, start + 90000))
        kept = {order: pages(order)[:2] for order in ("seed", "capture")}
        write_listing(collection, store, page_size=3)
        manifest = read(folder, MANIFEST)
        for order in ("seed", "capture"):  # its row was (and by seed time is) on page 2: pages 0-1 stay
            assert pages(order)[:2] == kept[order]
            assert manifest["orders"][order]["generations"][2:] == [manifest["generation"]] * 2
        as_full_rewrite_reads()
        assert all_rows(folder, "capture")[-1]["url"].endswith("000007.html")

    with Store(collection.db_path) as store, store.transaction():  # a run killed before its listing
        store.put(synthetic(12, None, start + 95000))  # no seed time: last by seed time
    with Store(collection.db_path) as store:
        kept = pages("seed")[:4]
        write_listing(collection, store, page_size=3)
        assert pages("seed")[:4] == kept and read(folder, MANIFEST)["count"] == 13
        as_full_rewrite_reads()

        store.clear()  # a rebuild: every page again
        for i in range(3):
            store.put(synthetic(i, start + i * 60, start + 86400 + i * 60))
        write_listing(collection, store, page_size=3)
        manifest = read(folder, MANIFEST)
        assert manifest["count"] == 3 and manifest["orders"]["seed"]["generations"] == [manifest["generation"]]
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [MANIFEST, page_name("seed", 0), page_name("capture", 0)])

        store.put(synthetic(3, start + 180, start + 86580))
        write_listing(collection, store, page_size=2)  # another page size: nothing can be kept
        manifest = read(folder, MANIFEST)
        assert manifest["orders"]["seed"]["generations"] == [manifest["generation"]] * 2
        assert [r["title"] for r in all_rows(folder, "seed")] == ["标题 0", "标题 1", "标题 2", "标题 3"]


def test_100000_articles_stream_into_pages(collection: Collection) -> None:
    n = 100_000
    start = 1_600_000_000
    # seed times run backwards against the URLs, capture times shuffled, every 10th has no seed time
    fill(collection, (synthetic(i, None if i % 10 == 0 else start + (n - i) * 60, start + (i * 7919) % n * 30)
                      for i in range(n)))
    report = write_listing(collection)
    assert report is not None and (report.count, report.page_size, report.pages) == (n, 500, 200)
    folder = listing_dir(collection)
    manifest = read(folder, MANIFEST)
    assert manifest["orders"]["seed"]["timed"] == n - n // 10
    for order in ("seed", "capture"):
        rows = all_rows(folder, order)
        assert len(rows) == n and len({r["url"] for r in rows}) == n
        key = "seed_time" if order == "seed" else "capture_time"
        timed = [r[key] for r in rows if r[key]]
        assert timed == sorted(timed)
        assert all(not r[key] for r in rows[len(timed):])  # untimed rows at the end


def test_capture_and_index_write_the_listing(site: NewsSite, cfg: Config, clock: Callable[[], datetime],
                                             new_id: Callable[[], str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    seeds = cfg.root / "seeds"
    seeds.mkdir()
    for n, path in enumerate(("/plain.html", "/gzip.html", "/gbk.html")):
        (seeds / f"{n}.txt").write_text(seed_document(site.url + path, f"文章 {n}", 1696553101000 + n * 1000), "utf-8")
    capture(cfg, [str(seeds)], clock=clock, new_id=new_id)
    collection = Collection.at(cfg.root, "news")
    folder = listing_dir(collection)
    first = read(folder, MANIFEST)
    assert (first["count"], first["pages"], first["page_size"]) == (3, 2, 2)
    assert [r["title"] for r in all_rows(folder, "seed")] == ["文章 0", "文章 1", "文章 2"]
    assert all(r["thumbnail"].startswith("/news/") and "im_/" in r["thumbnail"] for r in all_rows(folder, "seed"))
    # capture writes its collection only: templates come with `init` and `replay` (test_templates.py)
    assert not (cfg.root / "templates").exists() and not (cfg.root / "config.yaml").exists()

    capture(cfg, [str(seeds)], clock=clock, new_id=new_id)  # nothing new: left alone
    assert read(folder, MANIFEST)["generation"] == first["generation"]

    build_index(cfg)  # `archiver index` writes it again
    rebuilt = read(folder, MANIFEST)
    assert rebuilt["generation"] != first["generation"] and rebuilt["count"] == 3
    assert all_rows(folder, "capture") != [] and len(all_rows(folder, "capture")) == 3


def render_collection_page(template_dir: Path, coll: str, metadata: dict[str, str]) -> str:
    """/<coll>/ as pywb's FrontEndApp.serve_coll_page renders it, with `template_dir` first."""
    from pywb.rewrite.templateview import BaseInsertView, JinjaEnv

    jenv = JinjaEnv(paths=[str(template_dir)], globals={"static_path": "static"}, extensions=["jinja2.ext.i18n"])
    jenv.jinja_env.install_null_translations()
    jenv.init_loc(None, None, {}, None)
    view = BaseInsertView(jenv, "search.html")
    env = {"SCRIPT_NAME": f"/{coll}", "pywb.static_prefix": "http://127.0.0.1:8080/static"}
    return str(view.render_to_string(env, wb_prefix=f"/{coll}/", coll=coll, coll_config={}, metadata=metadata, ui={}))


def test_pywb_renders_the_collection_page_with_search_html() -> None:
    """pywb 2.10.0's FrontEndApp.serve_coll_page renders /<coll>/ with 'search.html', and
    serve_static serves collections/<coll>/static/ at /static/_/<coll>/ (the slow tests fetch it).

    Read as text: importing pywb.apps.frontendapp would monkey-patch this process with gevent.
    """
    import importlib.util

    spec = importlib.util.find_spec("pywb")
    assert spec is not None and spec.origin is not None
    source = (Path(spec.origin).parent / "apps" / "frontendapp.py").read_text(encoding="utf-8")
    coll_page = source[source.index("def serve_coll_page"):source.index("def serve_cdx")]
    assert "BaseInsertView(self.rewriterapp.jinja_env, 'search.html')" in coll_page
    assert "Rule(coll_prefix + '/', endpoint=self.serve_coll_page)" in source
    assert "Rule('/{0}/_/<coll>/<path:filepath>'.format(self.static_prefix), endpoint=self.serve_static)" in source
    static = source[source.index("def serve_static"):source.index("def get_coll_config")]
    assert "os.path.join(self.warcserver.root_dir, coll, self.static_dir)" in static


def test_collection_page_template_prints_values_only_escaped(tmp_path: Path) -> None:
    init(Config(root=tmp_path))
    assert (tmp_path / "templates" / "search.html").is_file()
    page = render_collection_page(tmp_path / "templates", "news", {"title": "</script><script>alert(1)</script>"})
    assert page.lstrip().startswith("<!DOCTYPE html>")
    assert "alert(1)</script>" not in page and "&lt;/script&gt;&lt;script&gt;alert(1)" in page
    assert "FrontEndApp.serve_coll_page" not in page  # the header comment is not sent to browsers
    assert f"var LISTING_VERSION = {listing.LISTING_VERSION};" in page  # the page reads this data format
    start = page.index('<script type="application/json" id="archiver-listing-data">')
    block = page[start:page.index("</script>", start)].split(">", 1)[1]
    assert json.loads(block) == {"coll": "news", "wb_prefix": "/news/",
                                 "listing_url": "http://127.0.0.1:8080/static/_/news/articles/"}
    assert ".innerHTML" not in page and "insertAdjacentHTML" not in page and "document.write" not in page


# --- in a browser ---------------------------------------------------------------------------------

START = 1696553101000
BROWSER_SEEDS = [  # (page, title, seed time in ms); the URL-list seed has no title and no seed time
    ("/plain.html", "普通文章", START),
    ("/gzip.html", "压缩文章", START + 60_000),
    ("/gbk.html", "GBK 文章", START + 120_000),
    ("/section/relative.html", "相对图片", START + 180_000),
    ("/missing-image.html", "图片不见了", START + 240_000),
    ("/chunked.html", XSS_TITLE, START + 300_000),
    ("/gone.html", "已删除的文章", START + 360_000),
]
ROWS_JS = """() => [...document.querySelectorAll('#articles tbody tr')].map(tr => {
  const cells = tr.querySelectorAll('td');
  const link = cells[1].querySelector('a');
  return {title: cells[1].querySelector('.title').textContent, href: link ? link.href : null,
          seed: cells[2].textContent, capture: cells[3].textContent, status: cells[4].textContent};
})"""
THUMB_LOADED = """() => [...document.querySelectorAll('#articles img.thumb')]
  .some(i => i.complete && i.naturalWidth > 0)"""


@pytest.fixture
def captured_root(site: NewsSite, cfg: Config, clock: Callable[[], datetime], new_id: Callable[[], str],
                  monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(listing, "PAGE_SIZE", 3)  # 8 articles: three pages
    seeds = cfg.root / "seeds"
    seeds.mkdir(parents=True)
    for n, (path, title, ms) in enumerate(BROWSER_SEEDS):
        body = "<p>只在订阅源里的正文</p>" if path == "/gone.html" else "<p>正文</p>"
        (seeds / f"{n}.txt").write_text(seed_document(site.url + path, title, ms, body=body), "utf-8")
    (seeds / "list.txt").write_text(site.url + "/og-only.html\n", "utf-8")
    report = capture(cfg, [str(seeds)], clock=clock, new_id=new_id)
    assert report.captured == 7 and [e.reason for e in report.failures] == ["http_404"]
    return cfg.root


def rendered(page: Any, action: Callable[[], object]) -> None:
    """Do `action` and wait until the page has drawn the rows it asked for."""
    before = page.evaluate("document.body.dataset.listingReady || ''")
    action()
    page.wait_for_function("old => (document.body.dataset.listingReady || '') !== old", arg=before)


def collect(page: Any) -> list[dict[str, Any]]:
    """Every row, page by page from the first, through the Next button."""
    first = page.locator("#pager-top [data-go=first]")
    if not first.is_disabled():
        rendered(page, first.click)
    rows: list[dict[str, Any]] = []
    while True:
        rows.extend(page.evaluate(ROWS_JS))
        following = page.locator("#pager-top [data-go=next]")
        if following.is_disabled():
            return rows
        rendered(page, following.click)


@pytest.mark.slow
def test_collection_page_lists_sorts_pages_and_links(captured_root: Path, tmp_path: Path) -> None:
    root = captured_root
    with Store(Collection.at(root, "news").db_path, readonly=True) as store:
        articles = list(store.articles())
    titles_by_seed = [a.title or a.page_title for a in articles]  # seed time, then the untimed row
    assert titles_by_seed[-1] == "只有社交图片" and XSS_TITLE in titles_by_seed

    with replay_server(root) as base, watched_page() as (page, dialogs, errors):
        # pywb serves collections/news/static/ at /static/_/news/
        with urllib.request.urlopen(base + "/static/_/news/articles/manifest.json", timeout=10) as response:
            manifest = json.load(response)
        assert (manifest["count"], manifest["page_size"], manifest["pages"]) == (8, 3, 3)

        rendered(page, lambda: page.goto(base + "/news/", wait_until="load"))
        assert page.inner_text("#listing-summary").startswith("8 articles, by seed time, newest first")
        first = page.evaluate(ROWS_JS)
        # newest seed first: the feed copy of the 404 page, the XSS title (as text), the missing image
        assert [r["title"] for r in first] == ["已删除的文章", XSS_TITLE, "图片不见了"]
        assert first[0]["seed"] == "2023-10-06 00:51:01 UTC" and first[0]["capture"].startswith("2024-01-02 ")
        assert first[0]["status"] == "404 · http_404 (feed copy)" and first[1]["status"] == "200"
        assert all(r["href"] and r["href"].startswith(base + "/news/2024") for r in first)
        page.wait_for_function(THUMB_LOADED)  # the chunked page's lead image, replayed with im_
        assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
        page.screenshot(path=str(tmp_path / "collection-page.png"), full_page=True)

        # every page, newest seed first: seeded rows backwards, then the row without a seed time
        assert [r["title"] for r in collect(page)] == titles_by_seed[-2::-1] + titles_by_seed[-1:]
        # oldest first
        rendered(page, lambda: page.click("#articles button[data-order=seed]"))
        assert page.url.endswith("#sort=seed&dir=asc&page=1")
        assert page.get_attribute("th[data-order=seed]", "aria-sort") == "ascending"
        assert page.inner_text("th[data-order=seed]").endswith("▲")
        assert [r["title"] for r in collect(page)] == titles_by_seed
        # by capture time, newest first, then oldest first
        for direction in ("desc", "asc"):
            rendered(page, lambda: page.click("#articles button[data-order=capture]"))
            assert page.url.endswith(f"#sort=capture&dir={direction}&page=1")
            assert page.get_attribute("th[data-order=seed]", "aria-sort") == "none"
            rows = collect(page)
            times = [r["capture"] for r in rows]
            assert len(rows) == 8 and times == sorted(times, reverse=direction == "desc"), times
            assert len(set(times)) == 8  # the test clock gives every capture its own second
        # the last page holds the rest
        rendered(page, lambda: page.click("#pager-bottom [data-go=first]"))
        assert page.inner_text("#pager-top .label") == "Page 1 of 3 (1–3)"
        rendered(page, lambda: page.click("#pager-top [data-go=last]"))
        assert page.inner_text("#pager-top .label") == "Page 3 of 3 (7–8)"
        assert len(page.evaluate(ROWS_JS)) == 2
        assert page.locator("#pager-top [data-go=next]").is_disabled()

        # a title opens its replay
        rendered(page, lambda: page.goto(base + "/news/#sort=seed&dir=asc&page=1"))
        assert len(page.evaluate(ROWS_JS)) == 3
        page.click("#articles a.title >> text=普通文章")
        frame = page.wait_for_selector("iframe#replay_iframe").content_frame()
        assert frame is not None
        frame.wait_for_selector("text=这是一篇普通的文章。")
        assert "/news/2024" in page.url and page.url.endswith("/plain.html")
        page.wait_for_timeout(300)
        assert dialogs == [] and errors == []


@pytest.mark.slow
def test_the_page_follows_a_rewritten_list(captured_root: Path) -> None:
    collection = Collection.at(captured_root, "news")
    with replay_server(captured_root) as base, watched_page() as (page, dialogs, errors):
        rendered(page, lambda: page.goto(base + "/news/", wait_until="load"))
        assert page.inner_text("#pager-top .label") == "Page 1 of 3 (1–3)"
        write_listing(collection, page_size=5)  # capture or index rewrites it while the page is open
        # pages already fetched are shown as they were (one generation); the next file fetched is
        # of the new generation (or gone): the page reads the new manifest and starts again
        rendered(page, lambda: page.click("#articles button[data-order=capture]"))
        assert page.inner_text("#pager-top .label") == "Page 1 of 2 (1–5)"
        times = [r["capture"] for r in page.evaluate(ROWS_JS)]
        assert len(times) == 5 and times == sorted(times, reverse=True)
        rendered(page, lambda: page.click("#pager-top [data-go=last]"))
        assert page.inner_text("#pager-top .label") == "Page 2 of 2 (6–8)"
        assert len(page.evaluate(ROWS_JS)) == 3
        # a link to a page past the new end shows the last one, and says so in the address
        rendered(page, lambda: page.goto(base + "/news/#sort=seed&dir=asc&page=3"))
        assert page.inner_text("#pager-top .label") == "Page 2 of 2 (6–8)"
        assert page.url.endswith("#sort=seed&dir=asc&page=2")
        assert dialogs == [] and errors == []


@pytest.mark.slow
def test_a_title_with_markup_is_text_and_runs_nothing(captured_root: Path) -> None:
    with replay_server(captured_root) as base, watched_page() as (page, dialogs, errors):
        page.goto(base + "/news/", wait_until="load")
        link = page.wait_for_selector(f'#articles a.title >> text="{XSS_TITLE}"')
        assert link is not None
        assert link.text_content() == XSS_TITLE and link.evaluate("a => a.children.length") == 0
        assert page.evaluate("document.querySelectorAll('#articles img:not(.thumb)').length") == 0
        page.wait_for_timeout(500)  # let anything the markup scheduled run
        assert dialogs == [] and errors == []
