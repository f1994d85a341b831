"""A capture over a folder mixing good and broken seeds captures every good one and reports
every broken one by file name and reason (property-based)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver.capture.run import capture
from archiver.config import Config

from .conftest import FAST
from .support.newsite import NewsSite, seed_document

GOOD_PAGES = ["/plain.html", "/gzip.html", "/gbk.html", "/chunked.html", "/og-only.html"]

broken = st.one_of(
    st.just(b""),
    st.binary(min_size=1, max_size=200).map(lambda b: b"\xff\xfe\x00" + b),  # not UTF-8
    st.text(max_size=200).map(lambda t: ("no link here " + t.replace("[", "").replace("http", "")).encode()),
    st.text(alphabet="abc ", max_size=20).map(lambda t: f"[{t}](ftp://example.org/{t.strip()})\n------\n".encode()),
    st.text(alphabet="abc", max_size=20).map(lambda t: f"<!--1696553101000-->\n------\n<p>{t}</p>".encode()),
    st.text(alphabet="abc", max_size=20).map(lambda t: f"[{t}](javascript:alert(1))\n".encode()),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(good=st.lists(st.sampled_from(GOOD_PAGES), min_size=1, max_size=5, unique=True),
       bad=st.lists(broken, min_size=1, max_size=5))
def test_good_seeds_are_captured_and_broken_ones_reported(site: NewsSite, good: list[str], bad: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seeds = root / "seeds"
        seeds.mkdir()
        for n, page in enumerate(good):
            (seeds / f"good-{n}.txt").write_text(seed_document(site.url + page, f"好 {n}", 1696553101000 + n))
        for n, data in enumerate(bad):
            (seeds / f"bad-{n}.txt").write_bytes(data)
        cfg = Config(root=root, allow_private=True, timeout=5, **FAST)  # type: ignore[arg-type]
        report = capture(cfg, [str(seeds)])
        assert report.captured == len(good)
        reported = sorted(e.source for e in report.failures)
        assert reported == sorted(f"seeds/bad-{n}.txt" for n in range(len(bad)))
        assert all(e.reason in ("invalid_seed", "bad_encoding", "unsupported_scheme") for e in report.failures)
