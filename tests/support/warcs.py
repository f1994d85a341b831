"""Reading WARC files in tests with third-party tools, not archiver's own reader."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

BIN = Path(sys.executable).parent


def records(path: Path) -> list[dict]:
    """Every record of a WARC as a dict: type, headers, http status/headers, payload bytes."""
    out = []
    with path.open("rb") as fh:
        for record in ArchiveIterator(fh):
            out.append({
                "type": record.rec_type,
                "headers": dict(record.rec_headers.headers),
                "status": record.http_headers.get_statuscode() if record.http_headers else None,
                "http": dict(record.http_headers.headers) if record.http_headers else {},
                "payload": record.raw_stream.read(),
            })
    return out


def record_spans(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of every record, as warcio (and so pywb) finds them."""
    spans = []
    with path.open("rb") as fh:
        iterator = ArchiveIterator(fh)
        for _ in iterator:
            iterator.read_to_end()
            spans.append((iterator.get_record_offset(), iterator.get_record_length()))
    return spans


def all_records(directory: Path) -> list[dict]:
    return [r for path in sorted(directory.glob("*.warc.gz")) for r in records(path)]


def check_with_third_party_tools(directory: Path) -> None:
    files = sorted(directory.glob("*.warc.gz"))
    assert files, f"no WARC files in {directory}"
    assert not list(directory.glob("*.open")), "a .open file was left behind"
    for path in files:
        warcio = subprocess.run([BIN / "warcio", "check", "-v", path], capture_output=True, text=True)
        assert warcio.returncode == 0, warcio.stdout + warcio.stderr
        fast = subprocess.run([BIN / "fastwarc", "check", path], capture_output=True, text=True)
        assert fast.returncode == 0, fast.stdout + fast.stderr
