"""A ZipNum cluster index: the replay index for collections whose CDXJ has outgrown one flat file.

pywb binary-searches a flat CDXJ file in place, which works at any size but reads the whole file
from disk (or a network file system) a page at a time, uncompressed. A ZipNum cluster, as pywb
2.10.0's `ZipNumIndexSource` reads it (pywb/warcserver/index/zipnum.py), is:

* the shard, `<part>.cdxj.gz`: the sorted CDXJ lines in blocks of N lines, each block one gzip
  member, the members concatenated;
* the summary, `index.idx`: one line per block, sorted like the blocks,
  `<SURT key> <timestamp>\\t<part>\\t<offset>\\t<length>\\t<block number from 1>`, where the key and
  timestamp are those of the block's first line and offset/length locate its gzip member in the
  shard;
* the location file, `index.loc`: `<part>\\t<path>` lines, a relative path being taken from the
  folder of the .loc file.

A lookup binary-searches the small summary, then reads and inflates one block (or a few).

The cluster lives in `collections/<name>/indexes/zipnum/`. pywb lists only the files directly in
`indexes/` (non-recursively), so it never loads it as well as `index.cdxj`; `build_zipnum` points
the collection at it with an entry in config.yaml (pywbconfig.py), and then pywb reads the cluster
instead of the flat file. The flat `index.cdxj` stays the source of truth (capture, verify, export
and wacz use it): the cluster is rebuilt from it by `archiver index --zipnum`.

Rebuilding while replay runs is safe: each build writes its shard under a new part name, then the
.loc (naming the new part and the previous one, which is kept until the next build), then the .idx,
each by rename, so a request reading the old summary still finds the old shard.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from isal import isal_zlib

from archiver._fs import atomic_write, fsync_dir
from archiver.collection import Collection, locked
from archiver.errors import ReplayIndexError, UsageError
from archiver.index.pywbconfig import set_collection_index

_LEVEL = 2  # ISA-L's levels (0-3): the same gzip format as zlib's, written several times faster

ZIPNUM_DIR = "zipnum"
SUMMARY_NAME = "index.idx"
LOC_NAME = "index.loc"
SHARD_SUFFIX = ".cdxj.gz"
PART_PREFIX = "index-"


@dataclass(frozen=True)
class ZipnumReport:
    lines: int  # CDXJ lines in the cluster
    blocks: int  # gzip blocks (= summary lines)
    summary: Path  # the .idx file pywb is pointed at
    shard: Path  # the compressed blocks
    shard_bytes: int
    source_bytes: int  # size of the flat CDXJ it was built from
    index: str = ""  # the `index:` value in config.yaml ("" when not configured)
    config_changed: bool = False  # config.yaml was changed: a running replay must restart to read it


def zipnum_dir(collection: Collection) -> Path:
    return collection.indexes_dir / ZIPNUM_DIR


def summary_path(collection: Collection) -> Path:
    return zipnum_dir(collection) / SUMMARY_NAME


# Lines a block. 300 rather than the 3,000 of IA-style clusters: a lookup inflates a tenth as much
# for a cluster only slightly larger (bench/zipnum_lookup.py, bench/README.md); the summary (one
# line a block) stays small enough to search at 10^8 lines.
LINES_PER_BLOCK = 300


def pywb_index(collection: Collection) -> str:
    """The `index:` value pywb reads the cluster from: relative to the root, pywb's working directory."""
    return "zipnum+" + summary_path(collection).relative_to(collection.root).as_posix()


def build_zipnum(collection: Collection, lines_per_block: int = LINES_PER_BLOCK, *,
                 configure: bool = True) -> ZipnumReport:
    """Build the collection's ZipNum cluster from its `indexes/index.cdxj` (read as a stream: memory
    stays at one block, whatever the size) and, with `configure`, point pywb's replay at it in the
    root's config.yaml.
    """
    if not collection.cdxj_path.exists():
        raise ReplayIndexError(f"collection {collection.name!r} has no {collection.cdxj_path.name} "
                               f"to build a zipnum index from (run 'archiver index -c {collection.name}')")
    with locked(collection):
        report = write_zipnum(collection.cdxj_path, zipnum_dir(collection), lines_per_block)
        if not configure:
            return report
        index = pywb_index(collection)
        changed = set_collection_index(collection.root, collection.name, index)
        return dataclasses.replace(report, index=index, config_changed=changed)


def write_zipnum(source: Path, folder: Path, lines_per_block: int = LINES_PER_BLOCK) -> ZipnumReport:
    """Write the ZipNum cluster of the sorted CDXJ file `source` into `folder` (see the module doc)."""
    if lines_per_block < 1:
        raise UsageError(f"lines per block must be at least 1, not {lines_per_block}")
    folder.mkdir(parents=True, exist_ok=True)
    # a new part name per build: a summary being read during the rebuild still resolves to its own shard
    part = f"{PART_PREFIX}{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"
    shard = folder / (part + SHARD_SUFFIX)
    previous = _current_part(folder)
    lines = blocks = 0
    with source.open("rb") as src, atomic_write(shard) as out, atomic_write(folder / (SUMMARY_NAME + ".new")) as idx:
        for number, block in enumerate(_blocks(_sorted_lines(src, source), lines_per_block), start=1):
            data = b"".join(block)
            packed = isal_zlib.compress(data, _LEVEL, 31)  # wbits 31: a complete gzip member
            offset = out.tell()
            out.write(packed)
            idx.write(b"\t".join((_block_key(block[0]), part.encode(), str(offset).encode(),
                                  str(len(packed)).encode(), str(number).encode())) + b"\n")
            lines += len(block)
            blocks = number
        if not lines:  # pywb 2.10.0 fails every lookup on an empty summary (IndexError in read_last_line)
            raise ReplayIndexError(f"{source} has no lines: there is nothing to build a zipnum index from")
    loc = f"{part}\t{shard.name}\n"
    if previous and (folder / (previous + SHARD_SUFFIX)).exists():
        loc += f"{previous}\t{previous}{SHARD_SUFFIX}\n"
    with atomic_write(folder / LOC_NAME) as fh:
        fh.write(loc.encode())
    os.replace(folder / (SUMMARY_NAME + ".new"), folder / SUMMARY_NAME)  # the switch to the new cluster
    fsync_dir(folder)
    for old in folder.glob(f"{PART_PREFIX}*{SHARD_SUFFIX}"):
        if old.name not in (shard.name, f"{previous}{SHARD_SUFFIX}"):
            old.unlink(missing_ok=True)  # two builds old: no summary names it any more
    return ZipnumReport(lines=lines, blocks=blocks, summary=folder / SUMMARY_NAME, shard=shard,
                        shard_bytes=shard.stat().st_size, source_bytes=source.stat().st_size)


def _sorted_lines(src: IO[bytes], source: Path) -> Iterator[bytes]:
    """Non-empty lines (newline-terminated), checked to be sorted: pywb's binary search needs it."""
    previous = b""
    for number, raw in enumerate(src, start=1):
        line = raw.rstrip(b"\r\n")
        if not line:
            continue
        if line < previous:
            raise ReplayIndexError(f"{source}: line {number} is out of order; the CDXJ must be sorted "
                                   "(run 'archiver index' to rebuild it)")
        previous = line
        yield line + b"\n"


def _blocks(lines: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    block: list[bytes] = []
    for line in lines:
        block.append(line)
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block


def _block_key(line: bytes) -> bytes:
    """`<SURT key> <timestamp>` of a CDXJ line: what pywb compares query keys with in the summary."""
    return b" ".join(line.rstrip(b"\n").split(b" ", 2)[:2])


def _current_part(folder: Path) -> str | None:
    """The part the current summary names (None before the first build)."""
    try:
        with (folder / SUMMARY_NAME).open("rb") as fh:
            first = fh.readline()
    except FileNotFoundError:
        return None
    fields = first.split(b"\t")
    return fields[1].decode() if len(fields) > 1 else None
