"""Generate the synthetic gzip WARC corpus for the index benchmark, with warcio's WARCWriter.

Each article is laid out as archiver's capture writes it (archiver/capture/seed.py `_capture_seed`):
the page's `response` and `request` records, for one article in four the lead image's
`response` and `request`, then a `metadata` record holding the seed document (text/markdown)
with Archiver-Source, Archiver-Lead-Image, Archiver-Lead-Image-Status, Archiver-Attempts and
WARC-Concurrent-To pointing at the page's response. Every file opens with a warcinfo record.

    make_corpus.py OUTDIR --articles 20000 --files 10 --extra 200

writes OUTDIR/bench-NNNNN.warc.gz, OUTDIR/extra/bench-extra.warc.gz (the ~1% added for the
incremental update) and OUTDIR/manifest.json last. Deterministic: same arguments, same bytes.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from content import article_html, article_title, jpeg_pool, seed_document
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

HOSTS = 50
START = datetime(2024, 1, 1, tzinfo=UTC)


def urls(j: int) -> tuple[str, str]:
    host = j % HOSTS
    day = START + timedelta(minutes=j)
    page = f"https://news{host}.example.com/{day:%Y/%m/%d}/article-{j}.html"
    image = f"https://img{host}.example.com/photos/{j}.jpg"
    return page, image


def warc_date(j: int, step: int) -> str:
    moment = START + timedelta(days=400, seconds=j, microseconds=step * 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_file(path: Path, first: int, count: int, images: list[bytes], image_every: int) -> dict[str, int]:
    rnd = random.Random(first * 31 + count)

    def rid() -> str:
        return f"<urn:uuid:{uuid.UUID(int=rnd.getrandbits(128), version=4)}>"

    counts = {"html": 0, "jpeg": 0, "metadata": 0, "records": 0}
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True, warc_version="1.1")
        info = writer.create_warcinfo_record(path.name, {"software": "archiver bench/make_corpus.py",
                                                         "format": "WARC File Format 1.1", "isPartOf": "bench"})
        info.rec_headers.replace_header("WARC-Record-ID", rid())
        info.rec_headers.replace_header("WARC-Date", warc_date(first, 0))
        writer.write_record(info)
        counts["records"] += 1

        def exchange(url: str, date: str, body: bytes, ctype: str, referer: str = "") -> str:
            response_id = rid()
            http = StatusAndHeaders("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body))),
                                               ("Server", "bench")], protocol="HTTP/1.1")
            record = writer.create_warc_record(url, "response", payload=io.BytesIO(body), length=len(body),
                                               http_headers=http,
                                               warc_headers_dict={"WARC-Record-ID": response_id, "WARC-Date": date,
                                                                  "WARC-IP-Address": "192.0.2.10"})
            writer.write_record(record)
            host = url.split("/")[2]
            path_part = "/" + url.split("/", 3)[3]
            req_headers = [("Host", host), ("User-Agent", "archiver/0.1 (news preservation; WARC capture)"),
                           ("Accept-Encoding", "gzip, deflate"), ("Accept", "*/*"), ("Connection", "keep-alive")]
            if referer:
                req_headers.append(("Referer", referer))
            request = writer.create_warc_record(
                url, "request", payload=io.BytesIO(b""), length=0,
                http_headers=StatusAndHeaders(f"GET {path_part} HTTP/1.1", req_headers, is_http_request=True),
                warc_headers_dict={"WARC-Record-ID": rid(), "WARC-Date": date, "WARC-Concurrent-To": response_id,
                                   "WARC-IP-Address": "192.0.2.10"})
            writer.write_record(request)
            counts["records"] += 2
            return response_id

        for j in range(first, first + count):
            page, image = urls(j)
            response_id = exchange(page, warc_date(j, 1), article_html(j, image), "text/html; charset=utf-8")
            counts["html"] += 1
            fields = {"Archiver-Source": f"seeds/feed-{j // 1000:03d}/{j:06d}.md", "Archiver-Attempts": "1"}
            if j % image_every == 0:
                exchange(image, warc_date(j, 2), images[j % len(images)], "image/jpeg", referer=page)
                counts["jpeg"] += 1
                fields.update({"Archiver-Lead-Image": image, "Archiver-Lead-Image-Status": "200"})
            epoch_ms = int((START + timedelta(minutes=j)).timestamp() * 1000)
            doc = seed_document(page, article_title(j), epoch_ms, image if j % image_every == 0 else "").encode()
            meta = writer.create_warc_record(
                page, "metadata", payload=io.BytesIO(doc), length=len(doc),
                warc_content_type="text/markdown; charset=utf-8",
                warc_headers_dict={"WARC-Record-ID": rid(), "WARC-Date": warc_date(j, 3), **fields,
                                   "WARC-Concurrent-To": response_id})
            writer.write_record(meta)
            counts["metadata"] += 1
            counts["records"] += 1
    tmp.replace(path)
    return counts


def _job(args: tuple[str, int, int, int]) -> dict[str, int]:
    path, first, count, image_every = args
    return write_file(Path(path), first, count, jpeg_pool(), image_every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--extra", type=int, default=200, help="articles in the extra file (~1%%)")
    parser.add_argument("--image-every", type=int, default=4, help="one article in N has its lead image")
    parser.add_argument("--procs", type=int, default=2)
    args = parser.parse_args()
    out: Path = args.outdir
    (out / "extra").mkdir(parents=True, exist_ok=True)
    jpeg_pool()  # make the pool once, before the workers read it
    per_file = -(-args.articles // args.files)
    jobs = [(str(out / f"bench-{n:05d}.warc.gz"), n * per_file, min(per_file, args.articles - n * per_file),
             args.image_every) for n in range(args.files) if n * per_file < args.articles]
    jobs.append((str(out / "extra" / "bench-extra.warc.gz"), args.articles, args.extra, args.image_every))
    with multiprocessing.Pool(args.procs) as pool:
        results = pool.map(_job, jobs)
    total = {k: sum(r[k] for r in results[:-1]) for k in results[0]}
    manifest = {
        "articles": args.articles, "files": len(jobs) - 1, "extra": results[-1], **total,
        "bytes": sum(Path(j[0]).stat().st_size for j in jobs[:-1]),
        "extra_bytes": Path(jobs[-1][0]).stat().st_size,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()
