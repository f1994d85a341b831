"""Golden export: a deterministic capture (injected clock and record IDs, one worker) must export
exactly the rows in tests/golden/export.jsonl. Offsets and lengths are left out: they depend on
zlib's output and the Python version in the test server's headers, and so does the digest of
a feed copy (its text names the test site's port); the shard and batch key in WARC file names
are masked (hashes of the site's host:port).

Regenerate after an intended change: ARCHIVER_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_golden.py
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from archiver.capture.run import capture
from archiver.config import Config
from archiver.export import export

from .support.newsite import NewsSite, seed_document

GOLDEN = Path(__file__).parent / "golden" / "export.jsonl"
VOLATILE = ("warc_offset", "warc_length")


def test_export_matches_golden(cfg: Config, site: NewsSite, clock: Callable[[], datetime],
                               new_id: Callable[[], str]) -> None:
    seeds = cfg.root / "seeds"
    seeds.mkdir()
    pages = ["/plain.html", "/gbk.html", "/og-only.html", "/redirect", "/gone.html", "/chunked.html"]
    for n, page in enumerate(pages):
        (seeds / f"{n}.txt").write_text(seed_document(site.url + page, f"标题 {n}", 1696553101000 + n * 60_000,
                                                      body=f"<p>正文 {n}</p>"), encoding="utf-8")
    (seeds / "urls.txt").write_text(f"{site.url}/gzip.html\n{site.url}/missing-image.html\n")
    capture(replace(cfg, workers=1), [str(seeds)], clock=clock, new_id=new_id)
    out = io.StringIO()
    export(cfg, out, "jsonl")
    rows = []
    for line in out.getvalue().splitlines():
        row = json.loads(line.replace(site.url, "http://SITE").replace(site.url.replace("://", "/"), "http/SITE"))
        if row["error"]:  # the row points at the feed copy, whose text names the site's port
            row["payload_digest"] = "(feed copy)"
        # the batch's shard and key are hashes of the site's host:port and URLs, which name its port
        row["warc_file"] = re.sub(r"-\d{4}-[0-9a-f]{12}-", "-SHARD-KEY-", row["warc_file"])
        rows.append({k: v for k, v in row.items() if k not in VOLATILE})
    got = "".join(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n" for row in rows)
    if os.environ.get("ARCHIVER_REGEN_GOLDEN"):
        GOLDEN.write_text(got, encoding="utf-8")
    assert got == GOLDEN.read_text(encoding="utf-8")
