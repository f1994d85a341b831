from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from archiver.capture.processes import start_processes
from archiver.capture.run import capture
from archiver.collection import Collection, locked
from archiver.config import Config
from archiver.errors import UsageError
from archiver.index.metadata import Store

from .support.newsite import CHUNKED, JPEG, PAGES, SAME_BODY, NewsSite, seed_document
from .support.warcs import all_records, check_with_third_party_tools

SEEDED = {  # page -> (title, seed image)
    "/plain.html": ("普通文章", ""),
    "/gzip.html": ("压缩文章", ""),
    "/chunked.html": ("分块文章", ""),
    "/gbk.html": ("GBK 文章", ""),
    "/og-only.html": ("只有社交图片", ""),
    "/section/relative.html": ("相对图片", ""),
    "/missing-image.html": ("图片不见了", ""),
    "/redirect": ("跳转", ""),
    "/gone.html": ("已删除", "/img/lead.jpg"),
}


def sha1(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


@pytest.fixture
def captured(site: NewsSite, cfg: Config, clock: Callable[[], datetime], new_id: Callable[[], str]):
    seeds = cfg.root / "seeds"
    seeds.mkdir()
    for n, (path, (title, image)) in enumerate(SEEDED.items()):
        doc = seed_document(site.url + path, title, 1696553101000 + n * 1000,
                            image=(site.url + image) if image else "")
        (seeds / f"{n:03d}.txt").write_text(doc, encoding="utf-8")
    (seeds / "list.txt").write_text(f"# same body, two framings\n{site.url}/same-plain.html\n"
                                    f"{site.url}/same-chunked.html\n")
    report = capture(cfg, [str(seeds)], clock=clock, new_id=new_id)
    collection = Collection.at(cfg.root, "news")
    with Store(collection.db_path) as store:
        rows = {a.url.removeprefix(site.url): a for a in store.articles()}
    return report, rows, collection


def test_every_seed_ends_captured_or_failed_with_a_reason(captured) -> None:
    report, rows, _ = captured
    assert len(rows) == len(SEEDED) + 2
    assert report.captured == len(SEEDED) + 2 - 1
    assert [(e.reason, e.url.rsplit("/", 1)[-1]) for e in report.failures] == [("http_404", "gone.html")]
    assert rows["/gone.html"].error == "http_404" and rows["/gone.html"].status == 404
    assert all(not r.error for k, r in rows.items() if k != "/gone.html")


def test_warcs_pass_third_party_checks(captured) -> None:
    check_with_third_party_tools(captured[2].archive_dir)


def test_rows_carry_seed_and_page_metadata(captured, site: NewsSite) -> None:
    _, rows, _ = captured
    plain = rows["/plain.html"]
    assert plain.title == "普通文章"
    assert plain.seed_timestamp == 1696553101000 and plain.seed_time == "2023-10-06T00:45:01Z"
    assert plain.page_title == "普通文章"
    assert plain.published == "2023-10-06T02:11:00+02:00"
    assert plain.status == 200 and plain.final_url == site.url + "/plain.html"
    assert plain.lead_image_url == site.url + "/img/lead.jpg"
    assert plain.lead_image_status == 200 and plain.lead_image_error == ""
    assert plain.payload_digest == sha1(PAGES["/plain.html"][2])
    assert plain.replay_path.startswith("/news/2024010203") and plain.replay_path.endswith(site.url + "/plain.html")
    assert plain.source == "seeds/000.txt"
    assert rows["/same-plain.html"].title == "" and rows["/same-plain.html"].source == "seeds/list.txt:2"


def test_gbk_page_title_is_decoded_with_the_real_charset(captured) -> None:
    assert captured[1]["/gbk.html"].page_title == "朱镕基访问海港"


def test_redirects_are_followed_and_every_hop_is_kept(captured, site: NewsSite) -> None:
    _, rows, collection = captured
    row = rows["/redirect"]
    assert row.final_url == site.url + "/redirected.html" and row.status == 200
    responses = [r for r in all_records(collection.archive_dir) if r["type"] == "response"]
    by_uri = {r["headers"]["WARC-Target-URI"]: r["status"] for r in responses}
    assert by_uri[site.url + "/redirect"] == "301"
    assert by_uri[site.url + "/redirect2"] == "302"


def test_lead_image_comes_from_seed_then_og_image_then_article(captured, site: NewsSite) -> None:
    _, rows, _ = captured
    assert rows["/og-only.html"].lead_image_url == site.url + "/img/og.jpg"
    assert rows["/section/relative.html"].lead_image_url == site.url + "/img/lead.jpg"
    assert rows["/missing-image.html"].lead_image_url == site.url + "/img/nope.jpg"
    assert rows["/missing-image.html"].lead_image_status == 404
    assert rows["/missing-image.html"].lead_image_error == "http_404"
    assert rows["/gone.html"].lead_image_url == site.url + "/img/lead.jpg"


def test_images_are_stored_byte_for_byte(captured, site: NewsSite) -> None:
    records = all_records(captured[2].archive_dir)
    image = next(r for r in records if r["type"] == "response"
                 and r["headers"]["WARC-Target-URI"] == site.url + "/img/lead.jpg")
    assert image["payload"] == JPEG
    assert image["headers"]["WARC-Payload-Digest"] == sha1(JPEG)


def test_gzip_is_stored_as_received(captured, site: NewsSite) -> None:
    records = all_records(captured[2].archive_dir)
    page = next(r for r in records if r["type"] == "response"
                and r["headers"]["WARC-Target-URI"] == site.url + "/gzip.html")
    assert page["http"]["Content-Encoding"] == "gzip"
    assert page["payload"] == PAGES["/gzip.html"][2]
    assert gzip.decompress(page["payload"]).startswith(b"<!DOCTYPE html>")
    assert captured[1]["/gzip.html"].page_title == "压缩文章"


def test_chunked_bodies_are_unframed_with_agreeing_headers_and_digest(captured, site: NewsSite) -> None:
    records = all_records(captured[2].archive_dir)
    responses = {r["headers"]["WARC-Target-URI"]: r for r in records if r["type"] == "response"}
    chunked = responses[site.url + "/chunked.html"]
    assert chunked["payload"] == CHUNKED["/chunked.html"]
    assert "Transfer-Encoding" not in chunked["http"]
    assert chunked["http"]["X-Archive-Orig-Transfer-Encoding"] == "chunked"
    assert chunked["http"]["Content-Length"] == str(len(CHUNKED["/chunked.html"]))
    # the same body sent plainly and chunked has one payload digest
    plain, framed = responses[site.url + "/same-plain.html"], responses[site.url + "/same-chunked.html"]
    digests = {plain["headers"]["WARC-Payload-Digest"], framed["headers"]["WARC-Payload-Digest"]}
    assert digests == {sha1(SAME_BODY.encode())}


def test_requests_and_responses_are_linked_and_addressed(captured) -> None:
    records = all_records(captured[2].archive_dir)
    ids = {r["headers"]["WARC-Record-ID"]: r for r in records}
    requests = [r for r in records if r["type"] == "request"]
    responses = [r for r in records if r["type"] == "response"]
    assert len(requests) == len(responses) > 0
    for request in requests:
        response = ids[request["headers"]["WARC-Concurrent-To"]]
        assert response["type"] == "response"
        assert response["headers"]["WARC-Target-URI"] == request["headers"]["WARC-Target-URI"]
        assert request["headers"]["WARC-IP-Address"] == response["headers"]["WARC-IP-Address"] == "127.0.0.1"
        assert request["payload"].startswith(b"GET /") or request["http"]
    for path in sorted(captured[2].archive_dir.glob("*.warc.gz")):
        first = all_records_first(path)
        assert first["type"] == "warcinfo"


def all_records_first(path: Path) -> dict:
    from .support.warcs import records

    return records(path)[0]


def test_seed_document_is_stored_as_metadata_tied_to_the_capture(captured, site: NewsSite) -> None:
    records = all_records(captured[2].archive_dir)
    ids = {r["headers"]["WARC-Record-ID"]: r for r in records}
    metadata = {r["headers"]["WARC-Target-URI"]: r for r in records if r["type"] == "metadata"}
    plain = metadata[site.url + "/plain.html"]
    assert plain["payload"].decode("utf-8").startswith("<!--1696553101000-->\n[普通文章](")
    assert plain["headers"]["Content-Type"].startswith("text/markdown")
    assert ids[plain["headers"]["WARC-Concurrent-To"]]["type"] == "response"
    # the live page is gone: the feed's copy is kept as a page of its own and referred to
    gone = metadata[site.url + "/gone.html"]
    copy = ids[gone["headers"]["WARC-Refers-To"]]
    assert copy["type"] == "resource"
    expected = "https://feed-copy.invalid/" + (site.url + "/gone.html").replace("://", "/")
    assert copy["headers"]["WARC-Target-URI"] == expected
    assert "已删除" in copy["payload"].decode("utf-8") and "http_404" in copy["payload"].decode("utf-8")


def test_rerun_skips_captured_and_retries_failed(captured, cfg: Config, site: NewsSite) -> None:
    hits_before = len(site.hits)
    report = capture(cfg, [str(cfg.root / "seeds")])
    assert report.skipped == len(SEEDED) + 2 - 1
    assert report.captured == 0 and [e.reason for e in report.failures] == ["http_404"]
    assert site.hits[hits_before:] == ["/gone.html", "/img/lead.jpg"]


def test_url_seeds_without_a_document_fail_with_a_reason(cfg: Config, site: NewsSite) -> None:
    report = capture(cfg, [site.url + "/nothing-here", site.url + "/loop"])
    assert sorted(e.reason for e in report.failures) == ["http_404", "too_many_redirects"]


def test_private_addresses_are_refused_by_default(cfg: Config, site: NewsSite) -> None:
    guarded = cfg.replace(allow_private=False)
    report = capture(guarded, [site.url + "/plain.html"])
    assert [e.reason for e in report.failures] == ["blocked_address"]
    assert "/plain.html" not in site.hits[-1:]


def test_total_deadline_cuts_a_dripping_server(cfg: Config, site: NewsSite) -> None:
    quick = cfg.replace(timeout=1, read_timeout=5)
    report = capture(quick, [site.url + "/drip.html"])
    assert [e.reason for e in report.failures] == ["truncated_time"]
    records = all_records(Collection.at(cfg.root, "news").archive_dir)
    response = next(r for r in records if r["type"] == "response")
    assert response["headers"]["WARC-Truncated"] == "time"
    assert 0 < len(response["payload"]) < 40


def test_size_cap_truncates_and_marks(cfg: Config, site: NewsSite) -> None:
    small = cfg.replace(max_size=1000, lead_images=False)
    capture(small, [site.url + "/img/lead.jpg"])
    records = all_records(Collection.at(cfg.root, "news").archive_dir)
    response = next(r for r in records if r["type"] == "response")
    assert response["headers"]["WARC-Truncated"] == "length"
    assert response["payload"] == JPEG[:1000]
    check_with_third_party_tools(Collection.at(cfg.root, "news").archive_dir)


def test_warc_files_roll_over_at_the_configured_size(cfg: Config, site: NewsSite) -> None:
    small = cfg.replace(workers=1, warc_max_size=40_000)
    urls = [site.url + p for p in ("/plain.html", "/gzip.html", "/gbk.html", "/og-only.html", "/chunked.html")]
    report = capture(small, urls)
    assert report.captured == 5
    archive = Collection.at(cfg.root, "news").archive_dir
    paths = sorted(archive.glob("*.warc.gz"))
    names = [p.name for p in paths]
    # one batch (one host): its files are numbered in order, each full before the next starts
    assert len(names) >= 2 and [n.rsplit("-", 1)[1] for n in names] == [f"{i:03d}.warc.gz" for i in range(len(names))]
    assert all(p.stat().st_size >= 40_000 for p in paths[:-1])
    check_with_third_party_tools(archive)
    with Store(Collection.at(cfg.root, "news").db_path) as store:
        assert {a.warc_file for a in store.articles()} <= set(names)


def test_processes_started_before_capture_run_its_batches_and_are_closed(cfg: Config, site: NewsSite) -> None:
    # `archiver capture` starts them before it imports the capture code (cli.py)
    two = cfg.replace(processes=2, workers=4)
    urls = [site.url + p for p in ("/plain.html", "/gbk.html")]
    runner = start_processes(two)
    assert runner is not None and all(p.is_alive() for p in runner.processes)
    report = capture(two, urls, runner=runner)
    assert report.captured == 2 and report.ok
    assert runner.closed and not any(p.is_alive() for p in runner.processes)
    # a capture that cannot start (the collection is busy) still lets them go
    runner = start_processes(two)
    assert runner is not None
    with locked(Collection.at(cfg.root, "news")), pytest.raises(UsageError, match="another archiver process"):
        capture(two, [site.url + "/og-only.html"], runner=runner)
    assert runner.closed and not any(p.is_alive() for p in runner.processes)
    assert start_processes(cfg.replace(processes=1)) is None  # one process: threads of the capture


def test_worker_processes_share_out_hosts_and_write_valid_warcs(cfg: Config, site: NewsSite) -> None:
    # two host names for the same loopback site: 127.0.0.1 and localhost
    other = site.url.replace("127.0.0.1", "localhost")
    urls = [base + p for base in (site.url, other) for p in ("/plain.html", "/gbk.html", "/chunked.html")]
    report = capture(cfg.replace(processes=2, workers=4), urls)
    assert report.captured == 6 and report.ok
    collection = Collection.at(cfg.root, "news")
    names = [p.name for p in collection.warc_files()]
    assert len({n.split("-")[2] for n in names}) == 2  # one shard per host, in the file names
    check_with_third_party_tools(collection.archive_dir)
    with Store(collection.db_path) as store:
        rows = list(store.articles())
    assert sorted(r.url for r in rows) == sorted(urls)
    assert all(r.warc_file in names for r in rows)
