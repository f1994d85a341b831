"""The floor for the index benchmark: the fastest bare read of the corpus, with no indexing.

    read_floor.py fastwarc|zlib --procs 2 FILE...

fastwarc: FastWARC's ArchiveIterator reads every record and its whole payload.
zlib:     Python's zlib inflates every gzip member, output thrown away.
Files are split between the processes by size. Prints one JSON line with the totals.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import zlib
from pathlib import Path


def read_fastwarc(paths: list[str]) -> tuple[int, int]:
    from fastwarc.warc import ArchiveIterator

    records = size = 0
    for path in paths:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                size += len(record.reader.read())
                records += 1
    return records, size


def read_zlib(paths: list[str]) -> tuple[int, int]:
    members = size = 0
    for path in paths:
        with open(path, "rb") as fh:
            inflater = zlib.decompressobj(31)
            while chunk := fh.read(1 << 20):
                while chunk:
                    size += len(inflater.decompress(chunk))
                    if not inflater.eof:
                        break
                    members += 1
                    chunk = inflater.unused_data
                    inflater = zlib.decompressobj(31)
    return members, size


def split(paths: list[str], procs: int) -> list[list[str]]:
    groups: list[list[str]] = [[] for _ in range(procs)]
    loads = [0] * procs
    for path in sorted(paths, key=lambda p: -Path(p).stat().st_size):
        k = loads.index(min(loads))
        groups[k].append(path)
        loads[k] += Path(path).stat().st_size
    return [g for g in groups if g]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("fastwarc", "zlib"))
    parser.add_argument("files", nargs="+")
    parser.add_argument("--procs", type=int, default=2)
    args = parser.parse_args()
    func = read_fastwarc if args.mode == "fastwarc" else read_zlib
    groups = split(args.files, args.procs)
    if len(groups) == 1:
        results = [func(groups[0])]
    else:
        with multiprocessing.Pool(len(groups)) as pool:
            results = pool.map(func, groups)
    print(json.dumps({"units": sum(r[0] for r in results), "bytes": sum(r[1] for r in results),
                      "procs": len(groups)}))


if __name__ == "__main__":
    main()
