"""Time finding what is due, as `archiver recapture` does (capture/recheck.selected), in a
collection made by make_schedule.py; prints one JSON line per "now".

    schedule_due.py ROOT COLLECTION NOW [NOW...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from archiver.capture.recheck import Selection, selected
from archiver.index.metadata import Store


def main() -> None:
    root, collection, moments = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    db_path = root / "collections" / collection / "indexes" / "metadata.sqlite"
    with Store(db_path, readonly=True) as store:
        for now in moments:
            started = time.perf_counter()
            due = sum(1 for _ in selected(store, Selection(), now, now))
            print(json.dumps({"now": now, "due": due, "seconds": time.perf_counter() - started}), flush=True)


if __name__ == "__main__":
    main()
