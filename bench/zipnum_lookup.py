"""One cdx lookup against a flat CDXJ, archiver's zipnum cluster of it, and (with --redis) Redis.

    .venv/bin/python bench/zipnum_lookup.py --lines 1000000 --lookups 2000 [--redis redis://127.0.0.1:6379/0]

Makes a sorted synthetic CDXJ of N lines (cdxj_lookup.py's: real SURT keys, 20 WARC files' worth
of fields; kept in bench/.data/zipnum/ and reused), builds the zipnum cluster with
archiver.index.zipnum.write_zipnum (3,000 lines a block by default here; archiver writes 300), optionally loads the
lines into Redis with archiver.index.redis, then times lookups through pywb's own readers as its
warcserver makes them for a replay request: CDXQuery for a URL present in the index, the index
source's load_index, and cdxops.process_cdx (closest capture, limit 1). The sources alternate
lookup by lookup after a warm-up (200 each), so they see the same machine and the same page
cache: this measures warm lookups, unless --cold drops the index files from the page cache before
each lookup (posix_fadvise DONTNEED on those files only), which is what a lookup on an index too
large for memory, or on a network file system, comes nearer to. Prints one JSON document: build times and
sizes, and per source the median, p99 and mean microseconds and how many lookups found their URL.
Nothing here is run by `make bench`; Redis must be on this machine (127.0.0.1).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

from cdxj_lookup import line, lookup, make, summary, url_of  # bench/ is this script's folder, first on sys.path

from archiver.collection import Collection
from archiver.index.zipnum import write_zipnum, zipnum_dir

BENCH = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--block", type=int, default=3000, help="lines per zipnum block")
    parser.add_argument("--redis", metavar="URL", help="also time Redis (a redis:// URL on 127.0.0.1)")
    parser.add_argument("--cold", action="store_true",
                        help="drop the index files from the page cache before every lookup (posix_fadvise)")
    args = parser.parse_args()

    collection = Collection.at(BENCH / ".data" / "zipnum" / f"root-{args.lines}", "bench")
    collection.create()
    result: dict[str, Any] = {"lines": args.lines, "lines_per_block": args.block}
    if not collection.cdxj_path.exists():
        make(collection.cdxj_path, args.lines)
    started = time.perf_counter()
    report = write_zipnum(collection.cdxj_path, zipnum_dir(collection), args.block)
    result["zipnum_build_s"] = round(time.perf_counter() - started, 2)
    result["flat_bytes"] = report.source_bytes
    result["zipnum_shard_bytes"] = report.shard_bytes
    result["zipnum_summary_bytes"] = report.summary.stat().st_size
    result["zipnum_blocks"] = report.blocks

    from pywb.warcserver.index.indexsource import FileIndexSource, RedisIndexSource
    from pywb.warcserver.index.zipnum import ZipNumIndexSource

    sources: dict[str, Any] = {"flat": FileIndexSource(str(collection.cdxj_path)),
                               "zipnum": ZipNumIndexSource(str(report.summary), None)}
    if args.redis:
        from archiver.index.redis import load_redis

        started = time.perf_counter()
        loaded = load_redis(collection, args.redis, configure=False)
        result["redis_load_s"] = round(time.perf_counter() - started, 2)
        sources["redis"] = RedisIndexSource(loaded.target.pywb_url)
    files = [collection.cdxj_path, report.summary, report.shard] if args.cold else []
    result["cold"] = args.cold
    result["lookups"] = timed(sources, args.lines, args.lookups, files)
    print(json.dumps(result, indent=2))


def evict(paths: list[Path]) -> None:
    """Drop these files' pages from the page cache (clean pages only; nothing else is touched)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def timed(sources: dict[str, Any], lines: int, lookups: int, cold: list[Path]) -> dict[str, dict[str, float]]:
    import surt

    rnd = random.Random(42)
    n = rnd.randrange(lines)
    assert surt.surt(url_of(n)) == line(n)[0], "synthetic keys must be pywb's SURT keys"
    times: dict[str, list[float]] = {name: [] for name in sources}
    found = dict.fromkeys(sources, 0)
    warmup = min(200, lookups)
    for i in range(warmup + lookups):
        url = url_of(rnd.randrange(lines))
        for name, source in sources.items():
            evict(cold)
            elapsed, hit = lookup(source, url)
            if i >= warmup:
                times[name].append(elapsed)
                found[name] += hit
    return summary(times, found, digits=1)


if __name__ == "__main__":
    main()
