"""Misbehaving servers on 127.0.0.1, and what capture does about each."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from archiver.capture.run import capture
from archiver.collection import Collection
from archiver.config import Config
from archiver.fetch.client import Fetcher, retry_after_seconds
from archiver.index.metadata import Store

from .conftest import Closing
from .support.newsite import OK_BODY, NewsSite
from .support.warcs import all_records, check_with_third_party_tools


class Sleeps(list[float]):
    """A sleep that records what it was asked to wait, and does not wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fetcher_and_sleeps(cfg: Config) -> tuple[Fetcher, Sleeps]:
    sleeps = Sleeps()
    return Fetcher(cfg.replace(backoff_base=1.0, backoff_max=8.0, retry_after_max=30.0),
                   lambda: datetime.now(UTC), sleep=sleeps), sleeps


def fresh(site: NewsSite, path: str) -> str:
    """A URL the server has not seen yet (fault counters are per URL)."""
    fresh.n = getattr(fresh, "n", 0) + 1  # type: ignore[attr-defined]
    return f"{site.url}{path}?n={fresh.n}"  # type: ignore[attr-defined]


def test_5xx_is_retried_with_exponential_backoff_and_jitter(fetcher_and_sleeps, site: NewsSite,
                                                            closing: Closing) -> None:
    fetcher, sleeps = fetcher_and_sleeps
    chain = closing(fetcher.follow(fresh(site, "/flaky.html")))
    assert [e.status for e in chain.exchanges] == [503, 503, 200]  # every answer is kept
    assert chain.attempts == 3 and not chain.error
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_backoff_is_capped(cfg: Config, site: NewsSite, closing: Closing) -> None:
    sleeps = Sleeps()
    fetcher = Fetcher(cfg.replace(retries=6, backoff_base=1.0, backoff_max=3.0), lambda: datetime.now(UTC),
                      sleep=sleeps)
    chain = closing(fetcher.follow(fresh(site, "/always-503.html")))
    assert chain.attempts == 7 and chain.final is not None and chain.final.status == 503
    assert len(sleeps) == 6 and max(sleeps) <= 3.0


def test_retry_after_seconds_is_honoured(fetcher_and_sleeps, site: NewsSite, closing: Closing) -> None:
    fetcher, sleeps = fetcher_and_sleeps
    chain = closing(fetcher.follow(fresh(site, "/retry-after-seconds.html")))
    assert [e.status for e in chain.exchanges] == [429, 200]
    assert sleeps == [7.0]


def test_retry_after_date_is_honoured_up_to_the_cap(fetcher_and_sleeps, site: NewsSite, closing: Closing) -> None:
    fetcher, sleeps = fetcher_and_sleeps
    chain = closing(fetcher.follow(fresh(site, "/retry-after-date.html")))
    assert [e.status for e in chain.exchanges] == [503, 200]
    assert sleeps == [30.0]


def test_retry_after_parsing() -> None:
    now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Tue, 02 Jan 2024 03:05:05 GMT", now) == 60
    assert retry_after_seconds("Tue, 02 Jan 2024 03:00:00 GMT", now) == 0
    assert retry_after_seconds("soon", now) is None and retry_after_seconds("", now) is None


def test_a_cut_body_is_marked_and_retried(fetcher_and_sleeps, site: NewsSite, closing: Closing) -> None:
    fetcher, _ = fetcher_and_sleeps
    chain = closing(fetcher.follow(fresh(site, "/cut.html")))
    first, second = chain.exchanges
    assert first.truncated == "disconnect" and first.body_length == 100
    assert second.truncated == "" and second.read_body(10_000) == OK_BODY


def test_a_reset_connection_ends_marked_never_silently_partial(cfg: Config, site: NewsSite) -> None:
    report = capture(cfg.replace(retries=1), [fresh(site, "/always-cut.html")])
    assert [e.reason for e in report.failures] == ["truncated_disconnect"]
    archive = Collection.at(cfg.root, "news").archive_dir
    responses = [r for r in all_records(archive) if r["type"] == "response"]
    assert len(responses) == 2
    assert all(r["headers"]["WARC-Truncated"] == "disconnect" for r in responses)
    check_with_third_party_tools(archive)


def test_headers_dripped_slowly_are_cut_at_the_deadline(cfg: Config, site: NewsSite) -> None:
    report = capture(cfg.replace(timeout=1, read_timeout=5, retries=0), [fresh(site, "/slow-headers.html")])
    assert [e.reason for e in report.failures] == ["timeout"]


def test_attempts_are_recorded(cfg: Config, site: NewsSite) -> None:
    url = fresh(site, "/flaky.html")
    capture(cfg, [url])
    with Store(Collection.at(cfg.root, "news").db_path) as store:
        row = store.get(url)
    assert row is not None and row.status == 200 and row.attempts == 3


def test_politeness_spaces_requests_to_one_host(cfg: Config, site: NewsSite, closing: Closing) -> None:
    sleeps = Sleeps()
    fetcher = Fetcher(cfg.replace(host_delay=2.0, host_concurrency=1), lambda: datetime.now(UTC), sleep=sleeps)
    for _ in range(3):
        closing(fetcher.get(site.url + "/plain.html"))
    # the recording sleep does not wait, so the third start is scheduled two delays after the first
    assert len(sleeps) == 2 and 1.5 < sleeps[0] <= 2.0 and 3.5 < sleeps[1] <= 4.0
    other = Fetcher(cfg.replace(host_delay=2.0), lambda: datetime.now(UTC), sleep=sleeps)
    closing(other.get(site.url + "/plain.html"))
    closing(other.get(site.url.replace("127.0.0.1", "localhost") + "/plain.html"))  # another host name: no wait
    assert len(sleeps) == 2


def test_a_gzip_bomb_is_stored_as_received_and_decoded_only_in_part(cfg: Config, site: NewsSite) -> None:
    import tracemalloc

    from .support.newsite import BOMB

    tracemalloc.start()
    try:
        report = capture(cfg, [site.url + "/bomb.html"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.captured == 1
    assert peak < 64 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB while capturing a 300 MB bomb"
    archive = Collection.at(cfg.root, "news").archive_dir
    response = next(r for r in all_records(archive) if r["type"] == "response")
    assert response["payload"] == BOMB[0] and response["http"]["Content-Encoding"] == "gzip"
    with Store(Collection.at(cfg.root, "news").db_path) as store:
        assert store.get(site.url + "/bomb.html").page_title == "bomb"  # type: ignore[union-attr]


def test_a_silent_server_times_out_on_read(cfg: Config, site: NewsSite) -> None:
    report = capture(cfg.replace(read_timeout=0.5, retries=0), [fresh(site, "/silent.html")])
    assert [e.reason for e in report.failures] == ["timeout"]


def test_long_redirect_chains_stop_and_every_hop_is_kept(cfg: Config, site: NewsSite) -> None:
    report = capture(cfg.replace(max_redirects=4, lead_images=False), [site.url + "/chain?0"])
    assert [e.reason for e in report.failures] == ["too_many_redirects"]
    archive = Collection.at(cfg.root, "news").archive_dir
    hops = [r["headers"]["WARC-Target-URI"] for r in all_records(archive) if r["type"] == "response"]
    assert hops == [f"{site.url}/chain?{n}" for n in range(5)]
