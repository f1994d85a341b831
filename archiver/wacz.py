"""`archiver wacz`: package a collection as one WACZ 1.1.1 file (Webrecorder's Web Archive Collection Zipped).

Layout of the ZIP:

    archive/<name>.warc.gz    the collection's WARC files, byte for byte, STORED (not recompressed),
                              so that a reader can seek to a record with an HTTP range request
    indexes/index.cdx         the collection's CDXJ replay index, byte for byte (sorted; `filename`
                              is the WARC file's name as it appears in archive/)
    pages/pages.jsonl         a header line, then one page per captured article, and one per later version of it
    datapackage.json          the manifest: every file above with its sha256 and size
    datapackage-digest.json   the sha256 of datapackage.json

The index is named index.cdx although it holds CDXJ (the spec asks only that index files hold
CDXJ, optionally gzipped): pywb 2.10's `wb-manager add --unpack-wacz` takes indexes named
*.cdx or *.cdx.gz and, finding none, adds nothing at all, not even the WARC files, while
ReplayWeb.page reads *.cdx and *.cdxj alike (and registers only *.cdx, not *.cdxj, for its
hash check against datapackage.json).

Only a collection that `archiver verify` finds clean is packaged. Everything streams: each file
is hashed while it is copied, in 1 MiB pieces. The ZIP is written to a temporary file beside
the target, fsynced, and renamed over it only when complete, so a half-written .wacz never
exists under the target's name. Paths inside the ZIP are built from fixed names and the WARC
files' names, which are checked to be plain single file names first.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from archiver import __version__
from archiver._fs import output_file
from archiver.collection import Collection, locked
from archiver.config import Config
from archiver.errors import UsageError, WaczRefused, WarcError
from archiver.index.metadata import Article, Store
from archiver.index.rows import iso_seconds
from archiver.index.versions import Version, versions_of
from archiver.verify import Problem, local_only, verify

WACZ_VERSION = "1.1.1"
INDEX_PATH = "indexes/index.cdx"
PAGES_PATH = "pages/pages.jsonl"
DATAPACKAGE = "datapackage.json"
DATAPACKAGE_DIGEST = "datapackage-digest.json"
PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
CHUNK = 1 << 20  # bytes copied (and hashed) at a time
SHOWN_PROBLEMS = 5  # problems quoted when a collection is refused

# A WARC file's name becomes archive/<name> inside the ZIP, and the `filename` of its index
# lines: it must be one plain file name on every system the WACZ may be unpacked on. No path
# separators (either kind), no drive or stream colon, no control characters, none of the
# characters Windows forbids in names; no leading dot (so neither "." nor ".." nor hidden files).
_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_MAX_NAME_BYTES = 255
DosTime = tuple[int, int, int, int, int, int]
_ZIP_EPOCH: DosTime = (1980, 1, 1, 0, 0, 0)  # the earliest time a ZIP entry can carry


@dataclass(frozen=True)
class Resource:
    """One file inside the WACZ, as datapackage.json lists it."""

    path: str
    hash: str  # "sha256:<hex>"
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"name": PurePosixPath(self.path).name, "path": self.path, "hash": self.hash, "bytes": self.bytes}


@dataclass
class WaczReport:
    output: Path
    warc_files: int = 0
    warc_bytes: int = 0
    index_lines: int = 0
    pages: int = 0
    records_verified: int = 0
    bytes: int = 0  # size of the .wacz written
    resources: list[Resource] = field(default_factory=list)


def member_name(warc_name: str) -> str:
    """archive/<warc_name>, or WaczRefused when the name could escape or break the layout."""
    why = _bad_name(warc_name)
    if why:
        raise WaczRefused(f"cannot put WARC file {warc_name!r} into a WACZ: its name {why}; rename it "
                          "(then run `archiver index`)")
    return _checked_path(f"archive/{warc_name}")


def _bad_name(name: str) -> str:
    if not name.endswith((".warc.gz", ".warc")):
        if name.endswith((".arc.gz", ".arc")):
            return "is an ARC file's, and a WACZ holds WARC files only"
        return "does not end in .warc.gz or .warc"
    if name.startswith("."):
        return "starts with a dot"
    if _FORBIDDEN.search(name):
        return "contains a path separator, a colon, a control character or one of * ? \" < > |"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if len(encoded) > _MAX_NAME_BYTES:
        return f"is longer than {_MAX_NAME_BYTES} bytes"
    return ""


def _checked_path(path: str) -> str:
    """Every path written into the ZIP passes here: relative, no empty, '.' or '..' part."""
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or any(part in ("", ".", "..") for part in parts) or \
            parts[0] not in ("archive", "indexes", "pages", DATAPACKAGE, DATAPACKAGE_DIGEST):
        raise WaczRefused(f"refusing to write {path!r} into a WACZ")  # unreachable through member_name
    return path


def wacz(cfg: Config, output: Path,
         progress: Callable[[int, int, str], None] | None = None) -> WaczReport:
    """Package the collection as the WACZ file `output`, replaced only when complete.

    Holds the collection's lock throughout, so that no capture or index run changes it while it
    is verified and copied. Raises UsageError for a missing collection, an empty one, or an
    unusable `output`; WaczRefused when the collection fails `verify()` or has a WARC file whose
    name cannot go into a WACZ.
    """
    local_only(cfg, "wacz")
    collection = Collection.of(cfg)
    if not collection.exists():
        raise UsageError(f"no collection {collection.name!r} under {cfg.root}")
    output = _checked_output(output)
    with locked(collection):
        warcs = collection.warc_files()
        if not warcs:
            raise UsageError(f"collection {collection.name!r} has no WARC files: nothing to package")
        members = [(path, member_name(path.name)) for path in warcs]
        checked = verify(cfg, progress=progress)
        if checked.problems:
            raise WaczRefused(_refusal(collection.name, checked.problems), checked.problems)
        report = WaczReport(output=output, records_verified=checked.records)
        with output_file(output) as fh:
            _write_zip(fh, collection, members, report, progress)
        report.bytes = output.stat().st_size
        return report


def _checked_output(output: Path) -> Path:
    if output.suffix != ".wacz":
        raise UsageError(f"{output}: a WACZ file's name must end in .wacz")
    if output.is_dir():
        raise UsageError(f"{output} is a directory")
    if not output.parent.is_dir():
        raise UsageError(f"no directory {output.parent} to write {output.name} into")
    return output


def _refusal(name: str, problems: list[Problem]) -> str:
    shown = "\n".join(f"  {problem}" for problem in problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    tail = f"\n  ... and {more} more" if more > 0 else ""
    mend = any(p.kind in ("open_file", "missing_index", "record_not_indexed") for p in problems)
    hint = "; `archiver index` mends leftover .open files and rebuilds the indexes" if mend else ""
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return (f"collection {name!r} fails verification ({count}), so no WACZ was written "
            f"(`archiver verify -c {name}` lists every problem{hint}):\n{shown}{tail}")


def _write_zip(fh: IO[bytes], collection: Collection, members: list[tuple[Path, str]],
               report: WaczReport, progress: Callable[[int, int, str], None] | None = None) -> None:
    created = datetime.now(UTC).replace(microsecond=0)
    when: DosTime = (created.year, created.month, created.day, created.hour, created.minute, created.second)
    resources = report.resources
    with zipfile.ZipFile(fh, "w", allowZip64=True) as zf:
        for done, (path, member) in enumerate(members):
            if progress is not None:
                progress(done, len(members), f"packaging {path.name}")
            copied = _copy_file(zf, path, member, zipfile.ZIP_STORED, _zip_time(path.stat().st_mtime))
            resources.append(copied.resource(member))
            report.warc_files += 1
            report.warc_bytes += copied.bytes
        if collection.cdxj_path.exists():
            index = _copy_file(zf, collection.cdxj_path, INDEX_PATH, zipfile.ZIP_DEFLATED, when, count_lines=True)
            resources.append(index.resource(INDEX_PATH))
            report.index_lines = index.lines()
        else:  # WARC files with no record to index (verify has made sure of that)
            resources.append(_write_bytes(zf, INDEX_PATH, b"", when))
        with Store(collection.db_path, readonly=True) as store:
            resources.append(_write_pages(zf, store, when, report))
        package = {
            "profile": "data-package",
            "wacz_version": WACZ_VERSION,
            "title": collection.name,
            "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "software": f"archiver {__version__}",
            "resources": [r.to_json() for r in resources],
        }
        manifest = (json.dumps(package, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
        listed = _write_bytes(zf, DATAPACKAGE, manifest, when)
        digest = {"path": DATAPACKAGE, "hash": listed.hash}
        _write_bytes(zf, DATAPACKAGE_DIGEST, (json.dumps(digest, indent=2) + "\n").encode("utf-8"), when)


def _zip_time(mtime: float) -> DosTime:
    t = time.gmtime(mtime)
    return max((t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec), _ZIP_EPOCH)


class _Hashing:
    """Counts and hashes what passes to a writable ZIP member."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self.newlines = 0
        self.last = b"\n"

    def write(self, data: bytes, count_lines: bool = False) -> None:
        self.sha256.update(data)
        self.bytes += len(data)
        if count_lines and data:
            self.newlines += data.count(b"\n")
            self.last = data[-1:]
        self.out.write(data)

    def lines(self) -> int:
        """Lines written with count_lines, a last one without its newline included."""
        return self.newlines + (self.last != b"\n")

    def resource(self, path: str) -> Resource:
        return Resource(path, "sha256:" + self.sha256.hexdigest(), self.bytes)


@contextmanager
def _member(zf: zipfile.ZipFile, path: str, compress: int, when: DosTime, size: int = 0,
            force_zip64: bool = False) -> Iterator[_Hashing]:
    info = zipfile.ZipInfo(_checked_path(path), date_time=when)
    info.compress_type = compress
    info.file_size = size  # known in advance: lets zipfile choose ZIP64 for files over 2 GiB
    info.external_attr = 0o644 << 16  # rw-r--r-- when unpacked
    with zf.open(info, "w", force_zip64=force_zip64) as out:
        yield _Hashing(out)


def _copy_file(zf: zipfile.ZipFile, source: Path, path: str, compress: int, when: DosTime,
               count_lines: bool = False) -> _Hashing:
    """Copy `source` into the ZIP as `path`, hashing (and counting lines) on the way."""
    size = source.stat().st_size
    with source.open("rb") as src, _member(zf, path, compress, when, size) as out:
        while chunk := src.read(CHUNK):
            out.write(chunk, count_lines)
    if out.bytes != size:
        raise WarcError(f"{source.name} changed size while it was being packaged ({size} bytes, then {out.bytes})")
    return out


def _write_bytes(zf: zipfile.ZipFile, path: str, data: bytes, when: DosTime) -> Resource:
    with _member(zf, path, zipfile.ZIP_DEFLATED, when, len(data)) as out:
        out.write(data)
    return out.resource(path)


def page_of(article: Article) -> dict[str, Any]:
    """The pages.jsonl entry of a captured article."""
    return {
        "id": hashlib.sha256(f"{article.capture_time} {article.url}".encode()).hexdigest()[:32],
        "url": article.url,
        "ts": article.capture_time,  # WARC-Date of the article's response, ISO 8601 UTC
        "title": article.page_title or article.title,
        "seed_title": article.title,
        "seed_time": article.seed_time,
        "published": article.published,
        "final_url": article.final_url,
        "status": article.status,
        "lead_image_url": article.lead_image_url,
        "lead_image_status": article.lead_image_status,
        "lead_image_error": article.lead_image_error,
    }


def version_page(version: Version) -> dict[str, Any]:
    """The pages.jsonl entry of a later version of an article (archiver recapture), at its own time."""
    stamp = version.replay_path.lstrip("/").split("/", 2)[1] if version.replay_path.count("/") >= 3 else ""
    ts = iso_seconds(stamp) if len(stamp) == 14 and stamp.isdigit() else version.first_seen
    return {
        "id": hashlib.sha256(f"{ts} {version.url} {version.version}".encode()).hexdigest()[:32],
        "url": version.url,
        "ts": ts,  # the version's own capture: replay finds it at this time
        "title": version.title,
        "version": version.version,
        "kind": version.kind,  # edited, removed or restored
        "status": version.status,
    }


def _write_pages(zf: zipfile.ZipFile, store: Store, when: DosTime, report: WaczReport) -> Resource:
    # the size is not known before writing; allow ZIP64 where the file could pass 2 GiB
    with _member(zf, PAGES_PATH, zipfile.ZIP_DEFLATED, when, force_zip64=store.count() > 30_000) as out:
        out.write((json.dumps(PAGES_HEADER) + "\n").encode("utf-8"))
        for article in store.articles():
            if article.captured and article.capture_time:
                out.write((json.dumps(page_of(article), ensure_ascii=False) + "\n").encode("utf-8"))
                report.pages += 1
                if article.versions and article.versions > 1:  # every version, each at its time
                    for version in versions_of(store.db, article.url)[1:]:
                        out.write((json.dumps(version_page(version), ensure_ascii=False) + "\n").encode("utf-8"))
                        report.pages += 1
    return out.resource(PAGES_PATH)
