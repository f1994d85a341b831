"""CDXJ lookups through pywb's own index reader, in a process of its own (pywb's imports stay here).

    cdxj_lookup.py make FILE --lines N                 write a sorted synthetic CDXJ file of N lines
    cdxj_lookup.py time FILE:N FILE:N... --lookups K    time K lookups per file, interleaved

A lookup is what pywb's warcserver does per replay request for a file index: CDXQuery
(canonicalise the URL to its SURT key range), FileIndexSource.load_index (binary search of the
sorted file, then the matching lines as CDXObjects), and cdxops.process_cdx (sort by closeness
to the requested timestamp). `time` warms up (200 lookups per file), then alternates the files
lookup by lookup, so that both see the same machine; it prints one JSON line with per-lookup
microseconds for each file.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

HOSTS = 5000


def url_of(n: int) -> str:
    return f"https://news{n % HOSTS}.example.com/a/{n}.html"


def line(n: int) -> tuple[str, str]:
    """(SURT key, CDXJ line) of synthetic capture n; the key is what surt.surt(url) gives."""
    host = n % HOSTS
    url = url_of(n)
    key = f"com,example,news{host})/a/{n}.html"
    ts = f"2024{1 + n % 12:02d}{1 + n % 28:02d}{n % 24:02d}{n % 60:02d}{(n * 7) % 60:02d}"
    fields = {"url": url, "mime": "text/html", "status": "200", "digest": f"{n:032X}"[:32],
              "length": str(20_000 + n % 60_000), "offset": str(n * 50_000 % 1_000_000_000),
              "filename": f"bench-{n // 20_000:05d}.warc.gz"}
    return key, f"{key} {ts} {json.dumps(fields)}"


def make(path: Path, lines: int) -> None:
    rows = sorted(line(n)[1] for n in range(lines))
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(row + "\n")
    tmp.replace(path)


def lookup(source: Any, url: str) -> tuple[float, bool]:
    """One closest-capture lookup as pywb makes it for a replay request: (seconds, found)."""
    from pywb.warcserver.index.cdxops import process_cdx
    from pywb.warcserver.index.query import CDXQuery

    started = time.perf_counter()
    query = CDXQuery({"url": url, "closest": "20240615000000", "limit": "1"})
    results = list(process_cdx(source.load_index(query.params), query))
    return time.perf_counter() - started, bool(results) and results[0]["url"] == url


def timed(files: list[tuple[Path, int]], lookups: int) -> dict[str, dict[str, float]]:
    """Time `lookups` lookups per file, interleaved (file A, file B, A, B...) after a warm-up."""
    import surt
    from pywb.warcserver.index.indexsource import FileIndexSource

    rnd = random.Random(42)
    sources = [(str(path), FileIndexSource(str(path)), lines) for path, lines in files]
    for _, _, lines in sources:
        n = rnd.randrange(lines)
        assert surt.surt(url_of(n)) == line(n)[0], "synthetic keys must be pywb's SURT keys"
    times: dict[str, list[float]] = {name: [] for name, _, _ in sources}
    found = dict.fromkeys(times, 0)
    warmup = min(200, lookups)
    for i in range(warmup + lookups):
        for name, source, lines in sources:
            url = url_of(rnd.randrange(lines))
            elapsed, hit = lookup(source, url)
            if i >= warmup:
                times[name].append(elapsed)
                found[name] += hit
    return summary(times, found)


def summary(times: dict[str, list[float]], found: dict[str, int],
            digits: int | None = None) -> dict[str, dict[str, float]]:
    """Per source: lookups, found, and the median, p99 and mean in microseconds (rounded to `digits`)."""
    out = {}
    for name, values in times.items():
        values.sort()
        micro = {"median_us": values[len(values) // 2] * 1e6, "p99_us": values[int(len(values) * 0.99)] * 1e6,
                 "mean_us": sum(values) / len(values) * 1e6}
        if digits is not None:
            micro = {key: round(value, digits) for key, value in micro.items()}
        out[name] = {"lookups": len(values), "found": found[name], **micro}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("make", "time"))
    parser.add_argument("files", nargs="+", help="make: FILE; time: FILE:LINES ...")
    parser.add_argument("--lines", type=int, default=0, help="make: lines to write")
    parser.add_argument("--lookups", type=int, default=2000, help="time: timed lookups per file")
    args = parser.parse_args()
    if args.action == "make":
        make(Path(args.files[0]), args.lines)
    else:
        pairs = [(Path(f.rsplit(":", 1)[0]), int(f.rsplit(":", 1)[1])) for f in args.files]
        print(json.dumps(timed(pairs, args.lookups)))


if __name__ == "__main__":
    main()
