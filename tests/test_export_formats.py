"""Parquet and CDXJ exports, and the export filters (--since/--until/--time-field/--status/--host)."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from dataclasses import astuple
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from archiver import export as export_module
from archiver.capture.run import capture
from archiver.cli import cli
from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import UsageError
from archiver.export import Filters, export
from archiver.index.metadata import FIELDS, INTEGER_FIELDS, Article, Store

from .support.newsite import NewsSite, seed_document

T0 = 1696553101000  # 2023-10-06T00:45:01Z


def article(url: str, **changes: object) -> Article:
    base: dict[str, object] = {name: None if name in INTEGER_FIELDS else "" for name in FIELDS}
    base.update(url=url, title="t", seed_timestamp=T0, seed_time="2023-10-06T00:45:01Z",
                capture_time="2024-01-02T03:04:05Z", status=200, warc_offset=0, warc_length=10, attempts=1,
                lead_image_status=None)
    base.update(changes)
    return Article(**base)  # type: ignore[arg-type]


def write(root: Path, *articles: Article) -> Config:
    collection = Collection.at(root, "news")
    collection.create()
    with Store(collection.db_path) as store, store.transaction():
        for a in articles:
            store.put(a)
    return Config(root=root)


def rows(cfg: Config, filters: Filters | None = None, fmt: str = "jsonl") -> list[dict[str, object]]:
    out = io.StringIO()
    count = export(cfg, out, fmt, filters)
    got = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(got)
    return got


def urls(cfg: Config, **filters: object) -> list[str]:
    return sorted(str(r["url"]) for r in rows(cfg, Filters.parse(**filters)))  # type: ignore[arg-type]


def read_parquet(path: Path, sql: str = "SELECT * FROM t") -> list[tuple[object, ...]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.read_parquet(str(path)).create_view("t")
    return con.execute(sql).fetchall()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- parquet ---------------------------------------------------------------------------------

def test_parquet_reads_back_in_duckdb_with_proper_types_and_values(tmp_path: Path) -> None:
    cfg = write(
        tmp_path,
        article("https://example.org/a", title="=1+1 标题", published="2023-10-06T02:11:00+02:00",
                warc_offset=5_000_000_000, warc_length=1234, payload_digest="sha1:ABC", page_title="页面"),
        article("https://example.org/b", seed_timestamp=T0 + 60_500, seed_time="2023-10-06T00:46:01Z",
                published="2023-10-06T02:11", status=None, attempts=None, warc_offset=None, error="timeout"),
        article("https://example.org/c", seed_timestamp=None, seed_time="", capture_time="",
                published="Fri, 06 Oct 2023 02:11:00 GMT", status=404, error="http_404"),
        article("https://example.org/d", seed_timestamp=T0 + 120_000, published="2023-10-06",
                lead_image_status=404, lead_image_error="http_404"),
    )
    out = tmp_path / "news.parquet"
    assert export(cfg, out, "parquet") == 4
    # typed analysis of the lead image, which was a string beside the integer status
    assert read_parquet(out, "SELECT url, lead_image_error FROM t WHERE lead_image_status >= 400") == [
        ("https://example.org/d", "http_404")]

    types = {name: kind for name, kind, *_ in read_parquet(out, "DESCRIBE SELECT * FROM t")}
    stamp = "TIMESTAMP WITH TIME ZONE"  # isAdjustedToUTC: an instant, shown in any zone
    assert list(types) == [*FIELDS[:6], "published_utc", *FIELDS[6:]]
    times = ("seed_timestamp", "seed_time", "capture_time", "published_utc", "last_checked", "last_changed",
             "removed_at", "next_check")
    assert {k: types[k] for k in times} == dict.fromkeys(times, stamp)
    counts = ("status", "attempts", "lead_image_status", "requisites", "requisites_failed", "requisites_skipped",
              "versions", "checks")
    assert {types[name] for name in counts} == {"INTEGER"}
    assert (types["warc_offset"], types["warc_length"]) == ("BIGINT", "BIGINT")
    strings = set(FIELDS) - {*times, "warc_offset", "warc_length", *counts}
    assert {types[name] for name in strings} == {"VARCHAR"}

    got = {r[0]: r for r in read_parquet(out, "SELECT url, title, seed_timestamp, seed_time, published, "
                                              "published_utc, capture_time, status, warc_offset, warc_length, "
                                              "attempts, error, page_title FROM t ORDER BY url")}
    a, b, c, d = (got[f"https://example.org/{k}"] for k in "abcd")
    # strings are exact (no CSV formula guard in a typed format)
    assert a[1] == "=1+1 标题" and a[12] == "页面"
    assert a[2] == utc("2023-10-06T00:45:01Z") and a[3] == utc("2023-10-06T00:45:01Z")
    assert a[4] == "2023-10-06T02:11:00+02:00" and a[5] == utc("2023-10-06T00:11:00Z")
    assert a[6] == utc("2024-01-02T03:04:05Z")
    assert a[7:11] == (200, 5_000_000_000, 1234, 1) and a[11] == ""
    # milliseconds survive; a published time without offset is no instant
    assert b[2] == utc("2023-10-06T00:46:01.500Z") and b[4] == "2023-10-06T02:11" and b[5] is None
    assert (b[7], b[8], b[10], b[11]) == (None, None, None, "timeout")
    # missing times are nulls; RFC 2822 dates with a zone are understood
    assert c[2] is None and c[3] is None and c[6] is None and c[7] == 404
    assert c[5] == utc("2023-10-06T02:11:00Z")
    assert d[4] == "2023-10-06" and d[5] is None  # a bare date has no zone either


def test_parquet_matches_jsonl_value_for_value(tmp_path: Path) -> None:
    cfg = write(tmp_path, *(article(f"https://example.org/{i}", seed_timestamp=T0 + i * 1000,
                                    title=f"t{i}", warc_offset=i) for i in range(25)))
    out = tmp_path / "x.parquet"
    export(cfg, out, "parquet")
    text = rows(cfg)
    table = pq.read_table(out).to_pylist()
    assert [r["url"] for r in table] == [r["url"] for r in text]  # same order as the text formats
    for typed, plain in zip(table, text, strict=True):
        assert typed["seed_timestamp"] == datetime.fromtimestamp(int(plain["seed_timestamp"]) / 1000, UTC)  # type: ignore[call-overload]
        assert {k: typed[k] for k in ("title", "warc_offset", "status")} == {
            k: plain[k] for k in ("title", "warc_offset", "status")}


def test_parquet_is_written_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_module, "BATCH_ROWS", 4)
    cfg = write(tmp_path, *(article(f"https://example.org/{i:02}") for i in range(10)))
    out = tmp_path / "x.parquet"
    assert export(cfg, out, "parquet") == 10
    assert pq.ParquetFile(out).metadata.num_row_groups == 3
    assert read_parquet(out, "SELECT count(*), count(DISTINCT url) FROM t") == [(10, 10)]


def test_an_empty_result_is_still_a_readable_parquet_file(tmp_path: Path) -> None:
    cfg = write(tmp_path, article("https://example.org/a"))
    out = tmp_path / "x.parquet"
    assert export(cfg, out, "parquet", Filters.parse(hosts=["nowhere.test"])) == 0
    assert read_parquet(out, "SELECT count(*) FROM t") == [(0,)]
    assert len(read_parquet(out, "DESCRIBE SELECT * FROM t")) == len(FIELDS) + 1


def many(root: Path, n: int) -> Config:
    """A collection of `n` rows of about 1 KB, generated inside SQLite (fast)."""
    collection = Collection.at(root, "news")
    collection.create()
    with Store(collection.db_path) as store:
        columns = dict(zip(FIELDS, astuple(article("")), strict=True))
        values = {name: "?" for name in FIELDS}
        values.update(url="printf('https://example.org/%07d', i)", seed_timestamp=f"{T0} + i",
                      title="printf('标题 %d ', i) || ?")
        params = [("标题 " * 100) if name == "title" else columns[name] for name in FIELDS
                  if name not in ("url", "seed_timestamp")]
        store.db.execute(
            f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {n - 1}) "
            f"INSERT INTO articles ({', '.join(FIELDS)}) SELECT {', '.join(values.values())} FROM n", params)
    return Config(root=root)


def traced_peak(cfg: Config, out: Path, fmt: str) -> tuple[int, int]:
    tracemalloc.start()
    try:
        count = export(cfg, out, fmt)
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_large_parquet_export_streams_in_flat_memory(tmp_path: Path) -> None:
    n = 100_000
    cfg = many(tmp_path, n)
    # one row first, so that what pyarrow imports on first use is not counted
    export(cfg, tmp_path / "warm.parquet", "parquet", Filters.parse(until="2023-10-06T00:45:01.001Z"))
    count, peak = traced_peak(cfg, tmp_path / "big.parquet", "parquet")
    # every row held at once takes over 100 MB of Python objects (200 MB converted); a batch of
    # 10,000 about 20
    assert count == n and peak < 40_000_000, peak
    assert read_parquet(tmp_path / "big.parquet", "SELECT count(*), count(DISTINCT url), max(seed_timestamp) FROM t") \
        == [(n, n, datetime.fromtimestamp((T0 + n - 1) / 1000, UTC))]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_text_exports_stream_row_by_row(tmp_path: Path, fmt: str) -> None:
    cfg = many(tmp_path, 20_000)  # over 20 MB if held at once
    count, peak = traced_peak(cfg, tmp_path / f"big.{fmt}", fmt)
    assert count == 20_000 and peak < 2_000_000, peak


def test_parquet_needs_a_file(tmp_path: Path) -> None:
    cfg = write(tmp_path, article("https://example.org/a"))
    with pytest.raises(UsageError, match="-o FILE"):
        export(cfg, io.StringIO(), "parquet")
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "export", "--format", "parquet"])
    assert result.exit_code == 2 and "-o FILE" in result.output


def test_exports_replace_the_file_only_when_complete(tmp_path: Path) -> None:
    cfg = write(tmp_path, article("https://example.org/a"))
    out = tmp_path / "x.parquet"
    out.write_bytes(b"previous export")
    with pytest.raises(UsageError):
        export(cfg.replace(collection="missing"), out, "parquet")  # fails before writing: the old file stays
    assert out.read_bytes() == b"previous export"
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "export", "--format", "parquet", "-o", str(out)])
    assert result.exit_code == 0 and "wrote 1 rows" in result.output
    assert read_parquet(out, "SELECT url FROM t") == [("https://example.org/a",)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["collections", "x.parquet"]  # no temporary left


def test_an_unwritable_output_is_a_usage_error(tmp_path: Path) -> None:
    cfg = write(tmp_path, article("https://example.org/a"))
    with pytest.raises(UsageError, match="cannot write"):
        export(cfg, tmp_path / "no" / "such" / "dir.csv", "csv")


# --- cdxj ------------------------------------------------------------------------------------

@pytest.fixture
def captured(cfg: Config, site: NewsSite) -> Collection:
    seeds = cfg.root / "seeds"
    seeds.mkdir()
    for n, page in enumerate(["/plain.html", "/gbk.html", "/redirect", "/missing-page.html"]):
        (seeds / f"{n}.txt").write_text(seed_document(site.url + page, f"t{n}", T0 + n))
    capture(cfg, [str(seeds)])
    return Collection.at(cfg.root, "news")


def test_cdxj_export_is_the_replay_index_as_is(cfg: Config, captured: Collection) -> None:
    out = io.StringIO(newline="")
    count = export(cfg, out, "cdxj")
    index = captured.cdxj_path.read_text(encoding="utf-8")
    assert out.getvalue() == index and count == len(index.splitlines()) > 4
    path = cfg.root / "index.cdxj"
    assert export(cfg, path, "cdxj") == count
    assert path.read_text(encoding="utf-8") == index


def test_cdxj_filters_by_record_host_time_and_status(cfg: Config, captured: Collection) -> None:
    index = captured.cdxj_path.read_text(encoding="utf-8").splitlines(keepends=True)

    def lines(**filters: object) -> list[str]:
        out = io.StringIO(newline="")
        export(cfg, out, "cdxj", Filters.parse(**filters))  # type: ignore[arg-type]
        return out.getvalue().splitlines(keepends=True)

    assert any("feed-copy.invalid/http/127.0.0.1" in line for line in index)
    assert sorted(lines(hosts=["127.0.0.1"])) == sorted(index)  # feed copies count under their article's host
    assert lines(hosts=["example.org"]) == []
    stamps = sorted({line.split(" ")[1] for line in index})
    first = datetime.strptime(stamps[0], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    assert lines(since=first.isoformat()) == index  # inclusive
    assert lines(until=first.isoformat()) == []  # exclusive
    assert lines(since=first.isoformat(), time_field="capture") == index
    assert lines(statuses=["404"]) == [line for line in index if '"status": "404"' in line] != []
    assert lines(statuses=["3xx"]) == [line for line in index if '"status": "30' in line] != []
    with pytest.raises(UsageError, match="capture time"):
        lines(since="2020-01-01", time_field="seed")
    with pytest.raises(UsageError, match="only HTTP statuses"):
        lines(statuses=["failed"])


def test_cdxj_host_matching_on_lines(tmp_path: Path) -> None:
    collection = Collection.at(tmp_path, "news")
    collection.create()
    entries = [
        ("org,example)/a", "http://example.org/a"),
        ("org,example,www)/b", "https://WWW.Example.org:8443/b"),
        ("org,badexample)/c", "http://badexample.org/c"),
        ("invalid,feed-copy)/https/news.example.org/d", "https://feed-copy.invalid/https/news.example.org/d"),
        ("com,other)/e", "http://other.com/e"),
    ]
    text = "".join(f'{key} 20240102030405 {{"url": "{url}", "status": "200"}}\n' for key, url in entries)
    collection.cdxj_path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    assert export(Config(root=tmp_path), out, "cdxj", Filters.parse(hosts=["example.org"])) == 3
    assert [json.loads(line.split(" ", 2)[2])["url"][-1] for line in out.getvalue().splitlines()] == ["a", "b", "d"]


# --- filters ---------------------------------------------------------------------------------

@pytest.fixture
def mixed(tmp_path: Path) -> Config:
    return write(
        tmp_path,
        article("https://example.org/ok", seed_timestamp=T0, capture_time="2024-01-01T00:00:00Z"),
        article("https://www.example.org/late", seed_timestamp=T0 + 1000, capture_time="2024-01-02T00:00:00Z"),
        article("http://news.EXAMPLE.org./gone", seed_timestamp=T0 + 2000, status=404, error="http_404",
                capture_time="2024-01-03T00:00:00Z"),
        article("https://badexample.org/x", seed_timestamp=T0 + 3000, status=None, error="dns_error",
                capture_time="2024-01-04T00:00:00Z"),
        article("https://example.org.evil.test/y", seed_timestamp=T0 + 4000, status=503, error="http_503",
                capture_time="2024-01-05T00:00:00Z"),
        article("https://xn--bcher-kva.example/z", seed_timestamp=None, status=301,
                capture_time="2024-01-06T00:00:00Z"),
    )


def test_host_matches_the_host_and_its_subdomains_only(mixed: Config) -> None:
    assert urls(mixed, hosts=["example.org"]) == [
        "http://news.EXAMPLE.org./gone", "https://example.org/ok", "https://www.example.org/late"]
    assert urls(mixed, hosts=["www.example.org"]) == ["https://www.example.org/late"]
    assert urls(mixed, hosts=["EXAMPLE.ORG."]) == urls(mixed, hosts=["example.org"])
    assert urls(mixed, hosts=["badexample.org", "evil.test"]) == [
        "https://badexample.org/x", "https://example.org.evil.test/y"]
    assert urls(mixed, hosts=["bücher.example"]) == ["https://xn--bcher-kva.example/z"]  # IDN as punycode
    for bad in ("example.org:8080", "https://example.org/", "", ".org"):
        with pytest.raises(UsageError, match="--host"):
            Filters.parse(hosts=[bad])


def test_status_matches_http_statuses_classes_outcomes_and_reasons(mixed: Config) -> None:
    assert urls(mixed, statuses=["200"]) == ["https://example.org/ok", "https://www.example.org/late"]
    assert urls(mixed, statuses=["404"]) == urls(mixed, statuses=["http_404"]) == ["http://news.EXAMPLE.org./gone"]
    assert urls(mixed, statuses=["5xx", "3xx"]) == ["https://example.org.evil.test/y", "https://xn--bcher-kva.example/z"]
    assert urls(mixed, statuses=["failed"]) == [
        "http://news.EXAMPLE.org./gone", "https://badexample.org/x", "https://example.org.evil.test/y"]
    assert urls(mixed, statuses=["captured"]) == [
        "https://example.org/ok", "https://www.example.org/late", "https://xn--bcher-kva.example/z"]
    assert urls(mixed, statuses=["dns_error", "HTTP_503"]) == ["https://badexample.org/x",
                                                              "https://example.org.evil.test/y"]
    for bad in ("99", "600", "2x", "http-404", "x y"):
        with pytest.raises(UsageError, match="--status"):
            Filters.parse(statuses=[bad])


def test_since_is_inclusive_and_until_exclusive_on_seed_time(mixed: Config) -> None:
    at = "2023-10-06T00:45:02Z"  # the second row's seed time, to the millisecond
    assert urls(mixed, since=at) == [
        "http://news.EXAMPLE.org./gone", "https://badexample.org/x", "https://example.org.evil.test/y",
        "https://www.example.org/late"]
    assert urls(mixed, until=at) == ["https://example.org/ok"]
    assert urls(mixed, since=at, until="2023-10-06T00:45:03Z") == ["https://www.example.org/late"]
    assert urls(mixed, since="2023-10-06T00:45:02.001Z") == urls(mixed, since="2023-10-06T00:45:03Z")
    assert urls(mixed, since="2023-10-06T08:45:02+08:00") == urls(mixed, since=at)  # offsets are honoured
    assert urls(mixed, since="2023-10-06T00:45:02") == urls(mixed, since=at)  # no offset: UTC
    assert len(urls(mixed, since="2023-10-06", until="2023-10-07")) == 5  # the URL-list-like row has no seed time
    assert urls(mixed, until="2023-10-06") == []


def test_since_and_until_on_capture_time(mixed: Config) -> None:
    def between(since: str | None, until: str | None) -> list[str]:
        return [str(r["capture_time"])[:10] for r in rows(mixed, Filters.parse(since, until, "capture"))]

    assert between("2024-01-02", "2024-01-04") == ["2024-01-02", "2024-01-03"]
    assert between("2024-01-05T00:00:00Z", None) == ["2024-01-05", "2024-01-06"]
    assert between("2024-01-01T00:00:00.5Z", "2024-01-02T00:00:00.5Z") == ["2024-01-02"]  # to the second
    assert between(None, "2024-01-01T08:00:00+08:00") == []
    with pytest.raises(UsageError, match="not before"):
        Filters.parse("2024-01-02", "2024-01-02")
    with pytest.raises(UsageError, match="ISO 8601"):
        Filters.parse("yesterday")


def test_filters_combine_and_apply_to_every_format(mixed: Config, tmp_path: Path) -> None:
    filters = Filters.parse(since="2023-10-06", statuses=["failed", "200"], hosts=["example.org"])
    expected = ["http://news.EXAMPLE.org./gone", "https://example.org/ok", "https://www.example.org/late"]
    assert sorted(str(r["url"]) for r in rows(mixed, filters)) == expected
    out = io.StringIO(newline="")
    assert export(mixed, out, "csv", filters) == 3
    assert sorted(r["url"] for r in csv.DictReader(io.StringIO(out.getvalue(), newline=""))) == expected
    path = tmp_path / "f.parquet"
    assert export(mixed, path, "parquet", filters) == 3
    assert sorted(r[0] for r in read_parquet(path, "SELECT url FROM t")) == expected  # type: ignore[type-var]


def test_filtered_csv_stays_formula_safe(tmp_path: Path) -> None:
    cfg = write(tmp_path, article("https://example.org/a", title="=HYPERLINK(\"http://evil\")"),
                article("https://other.test/b", title="@SUM(A1)"))
    out = io.StringIO(newline="")
    export(cfg, out, "csv", Filters.parse(hosts=["example.org"]))
    got = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert [r["title"] for r in got] == ["'=HYPERLINK(\"http://evil\")"]


def test_cli_export_options(mixed: Config) -> None:
    def run(*args: str) -> list[str]:
        result = CliRunner().invoke(cli, ["--root", str(mixed.root), "export", "--format", "jsonl", *args])
        assert result.exit_code == 0, result.output
        return sorted(json.loads(line)["url"] for line in result.output.splitlines())

    assert run("--host", "example.org", "--status", "failed") == ["http://news.EXAMPLE.org./gone"]
    assert run("--status", "404", "--status", "dns_error") == [
        "http://news.EXAMPLE.org./gone", "https://badexample.org/x"]
    assert run("--since", "2024-01-05", "--time-field", "capture") == [
        "https://example.org.evil.test/y", "https://xn--bcher-kva.example/z"]
    assert run("--until", "2023-10-06T00:45:01.001Z") == ["https://example.org/ok"]
    bad = CliRunner().invoke(cli, ["--root", str(mixed.root), "export", "--since", "soon"])
    assert bad.exit_code == 2 and "ISO 8601" in bad.output
