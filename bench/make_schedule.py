"""Fill a collection's metadata index with N synthetic captured articles whose next checks are
spread evenly over 30 days from 2025-01-01, for the schedule benchmark (finding what is due).

    make_schedule.py ROOT COLLECTION N

The tables are made by archiver.index.metadata.Store (so they are the real schema); the rows are
inserted in bulk, with the index on next_check built afterwards, as a rebuild would leave it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from archiver.index.metadata import FIELDS, Store

START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=30)


def rows(count: int) -> Iterator[tuple[object, ...]]:
    step = SPAN / count
    for i in range(count):
        url = f"https://news{i % 500}.example.com/2024/article-{i}.html"
        due = (START + step * i).strftime("%Y-%m-%dT%H:%M:%SZ")
        values = dict.fromkeys(FIELDS, "")
        values.update(url=url, title=f"t{i}", seed_timestamp=None, status=200, lead_image_status=None,
                      warc_offset=0, warc_length=1, attempts=1, requisites=None, requisites_failed=None,
                      requisites_skipped=None, versions=1, checks=0, capture_time="2024-12-31T00:00:00Z",
                      next_check=due, replay_path=f"/bench/20241231000000/{url}")
        yield tuple(values[name] for name in FIELDS)


def main() -> None:
    root, collection, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    db_path = root / "collections" / collection / "indexes" / "metadata.sqlite"
    db_path.parent.mkdir(parents=True, exist_ok=True)
    (root / "collections" / collection / "archive").mkdir(parents=True, exist_ok=True)
    with Store(db_path) as store:
        db = store.db
        db.execute("DROP INDEX IF EXISTS articles_by_next_check")
        db.execute("BEGIN")
        db.executemany(f"INSERT INTO articles ({', '.join(FIELDS)}) VALUES ({', '.join('?' for _ in FIELDS)})",
                       rows(count))
        db.execute("COMMIT")
    with Store(db_path) as store:  # opening it makes the indexes again
        store.db.execute("ANALYZE")
    print(f"{count} rows in {db_path}")


if __name__ == "__main__":
    main()
