from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.collection import Collection
from archiver.config import Config
from archiver.export import export, safe_cell
from archiver.index.metadata import FIELDS, Article, Store


def article(url: str = "https://example.org/a", title: str = "t", **changes: object) -> Article:
    base = dict.fromkeys(FIELDS, "")
    base.update(url=url, title=title, seed_timestamp=1696553101000, status=200, warc_offset=0, warc_length=10,
                attempts=1)
    base.update(changes)
    return Article(**base)  # type: ignore[arg-type]


def write(root: Path, *articles: Article) -> Config:
    collection = Collection.at(root, "news")
    collection.create()
    with Store(collection.db_path) as store:
        for a in articles:
            store.put(a)
    return Config(root=root)


def test_export_has_every_documented_field_in_order(tmp_path: Path) -> None:
    cfg = write(tmp_path, article())
    out = io.StringIO()
    assert export(cfg, out, "csv") == 1
    header = out.getvalue().splitlines()[0].split(",")
    assert header == [
        "url", "title", "seed_timestamp", "seed_time", "page_title", "published", "capture_time", "status",
        "final_url", "lead_image_url", "lead_image_status", "lead_image_error", "warc_file", "warc_offset",
        "warc_length",
        "payload_digest", "replay_path", "source", "error", "attempts", "requisites", "requisites_failed",
        "requisites_skipped", "versions", "checks", "last_checked", "last_changed", "removed_at", "next_check",
    ]


def test_spreadsheet_formulas_are_neutralised(tmp_path: Path) -> None:
    titles = ["=HYPERLINK(\"http://evil\")", "+1+1", "-2", "@SUM(A1)", "\tx", "\rx", "normal = fine"]
    cfg = write(tmp_path, *(article(f"https://example.org/{i}", t) for i, t in enumerate(titles)))
    out = io.StringIO()
    export(cfg, out, "csv")
    got = sorted(row["title"] for row in csv.DictReader(io.StringIO(out.getvalue())))
    assert got == sorted(["'" + t for t in titles[:-1]] + ["normal = fine"])
    assert safe_cell(-5) == -5  # numbers are numbers


def test_jsonl_keeps_types(tmp_path: Path) -> None:
    cfg = write(tmp_path, article(status=None, warc_offset=12345))
    out = io.StringIO()
    export(cfg, out, "jsonl")
    row = json.loads(out.getvalue())
    assert row["seed_timestamp"] == 1696553101000 and row["status"] is None and row["warc_offset"] == 12345
    assert list(row) == list(FIELDS)


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, alphabet=st.characters(blacklist_categories=("Cs",))),
       st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_any_title_and_url_survive_export_exactly(url: str, title: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cfg = write(Path(tmp), article(url, title))
        out = io.StringIO()
        export(cfg, out, "jsonl")
        row = json.loads(out.getvalue())
        assert (row["url"], row["title"]) == (url, title)
        out = io.StringIO(newline="")
        export(cfg, out, "csv")
        row = next(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
        assert row["url"] == safe_cell(url) and row["title"] == safe_cell(title)


def test_export_never_changes_the_index_it_reads(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    from archiver.errors import ConfigError

    cfg = write(tmp_path, article())
    db = Collection.at(tmp_path, "news").db_path
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 1")  # an index written by an older archiver
    before = db.read_bytes()
    with pytest.raises(ConfigError, match="archiver index"):
        export(cfg, io.StringIO(), "csv")
    assert db.read_bytes() == before
