"""`archiver status`: what each collection holds, for people and (with --json) for scripts."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner

from archiver.capture.run import capture
from archiver.cli import cli
from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import UsageError
from archiver.export import export
from archiver.status import status

from .support.newsite import NewsSite, seed_document


@pytest.fixture
def collection(cfg: Config, site: NewsSite) -> Collection:
    seeds = cfg.root / "seeds"
    seeds.mkdir()
    pages = ["/plain.html", "/gbk.html", "/redirect", "/missing-page.html", "/also-missing.html"]
    for n, page in enumerate(pages):
        (seeds / f"{n}.txt").write_text(seed_document(site.url + page, f"t{n}", 1696553101000 + n))
    capture(cfg, [str(seeds)])
    return Collection.at(cfg.root, "news")


def exported(cfg: Config) -> list[dict[str, object]]:
    out = io.StringIO()
    export(cfg, out, "jsonl")
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_status_of_a_captured_collection(cfg: Config, collection: Collection) -> None:
    report = status(cfg)
    assert report.root == str(cfg.root) and [c.name for c in report.collections] == ["news"]
    news = report.collections[0]
    assert (news.seeds, news.captured, news.failed) == (5, 3, 2)
    assert news.failed_by_reason == {"http_404": 2}
    files = collection.warc_files()
    assert news.warc_files == len(files) > 0
    assert news.warc_bytes == sum(p.stat().st_size for p in files)
    assert news.unindexed_files == 0 and news.open_files == [] and news.has_index
    assert news.last_capture_time == max(str(row["capture_time"]) for row in exported(cfg))


def test_leftovers_and_unindexed_files_are_reported(cfg: Config, collection: Collection) -> None:
    leftover = collection.archive_dir / "archiver-20240102030405-x-00-00000.warc.gz.open"
    leftover.write_bytes(b"half a record")
    extra = collection.archive_dir / "other-tool.warc.gz"
    extra.write_bytes(collection.warc_files()[0].read_bytes())
    news = status(cfg).collections[0]
    assert news.open_files == [leftover.name]
    assert news.unindexed_files == 1
    assert leftover.exists()  # status reports, it does not mend


def test_every_collection_is_listed_when_none_is_named(cfg: Config, collection: Collection) -> None:
    Collection.at(cfg.root, "empty").create()  # created, never captured: no metadata index yet
    report = status(cfg, every=True)
    assert [c.name for c in report.collections] == ["empty", "news"]
    empty = report.collections[0]
    assert not empty.has_index and (empty.seeds, empty.warc_files, empty.last_capture_time) == (0, 0, None)
    assert not Collection.at(cfg.root, "empty").db_path.exists()  # and none is created


def test_a_missing_collection_is_a_usage_error(cfg: Config) -> None:
    with pytest.raises(UsageError, match="no collection 'nothing'"):
        status(cfg.replace(collection="nothing"))
    with pytest.raises(UsageError, match="invalid collection name"):
        status(cfg.replace(collection="../escape"))
    assert status(cfg, every=True).collections == []  # an empty root is simply empty


def test_cli_status_json_is_one_document_for_scripts(cfg: Config, collection: Collection) -> None:
    result = CliRunner().invoke(cli, ["--root", str(cfg.root), "status", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["root"] == str(cfg.root)
    (news,) = document["collections"]
    assert news["name"] == "news" and news["seeds"] == 5 and news["captured"] == 3 and news["failed"] == 2
    assert news["failed_by_reason"] == {"http_404": 2}
    assert news["warc_files"] == len(collection.warc_files()) and news["open_files"] == []
    assert isinstance(news["warc_bytes"], int) and news["last_capture_time"].endswith("Z")
    one = CliRunner().invoke(cli, ["--root", str(cfg.root), "status", "-c", "news", "--json"])
    assert json.loads(one.output) == document


def test_cli_status_for_people(cfg: Config, collection: Collection) -> None:
    result = CliRunner().invoke(cli, ["--root", str(cfg.root), "status", "-c", "news"])
    assert result.exit_code == 0, result.output
    assert "seeds          5 (3 captured, 2 failed)" in result.output
    assert "http_404" in result.output and "last capture" in result.output
    missing = CliRunner().invoke(cli, ["--root", str(cfg.root), "status", "-c", "nothing"])
    assert missing.exit_code == 2 and "no collection 'nothing'" in missing.output
