"""Fill a collection's metadata index with N synthetic rows through archiver.index.metadata.Store, for the
export memory benchmark (building 100,000 rows by capture or indexing would take far longer).

    make_rows.py ROOT COLLECTION N

Rows are built from the fields of archiver.index.metadata.Article, whatever they are, so the script
keeps working when fields are added: known names get realistic values, others a plain one.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from content import article_title, published_time

from archiver.index.metadata import Article, Store


def row(i: int, collection: str) -> Article:
    url = f"https://news{i % 50}.example.com/2024/{1 + i % 12:02d}/article-{i}.html"
    seed = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
    capture = seed + timedelta(days=400)
    stamp = capture.strftime("%Y%m%d%H%M%S")
    known: dict[str, Any] = {
        "url": url, "title": article_title(i), "seed_timestamp": int(seed.timestamp() * 1000),
        "seed_time": seed.strftime("%Y-%m-%dT%H:%M:%SZ"), "page_title": article_title(i),
        "published": published_time(i), "capture_time": capture.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": 200, "final_url": url, "lead_image_url": f"https://img{i % 50}.example.com/photos/{i}.jpg",
        "lead_image_status": 200, "lead_image_error": "",
        "warc_file": f"archiver-{stamp}-bench-00-{i // 5000:05d}.warc.gz",
        "warc_offset": (i % 5000) * 180_000, "warc_length": 25_000 + i % 30_000,
        "payload_digest": f"sha1:{i:032X}", "replay_path": f"/{collection}/{stamp}/{url}",
        "source": f"seeds/feed-{i // 1000:03d}/{i:06d}.md", "error": "", "attempts": 1,
    }
    values = {}
    for f in dataclasses.fields(Article):
        if f.name in known:
            values[f.name] = known[f.name]
        else:
            values[f.name] = None if "None" in str(f.type) else (0 if "int" in str(f.type) else "")
    return Article(**values)


def main() -> None:
    root, collection, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    db = root / "collections" / collection / "indexes" / "metadata.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    (root / "collections" / collection / "archive").mkdir(parents=True, exist_ok=True)
    with Store(db) as store, store.transaction():
        for i in range(count):
            store.put(row(i, collection))
    print(f"{count} rows in {db}")


if __name__ == "__main__":
    main()
