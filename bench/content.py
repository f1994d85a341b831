"""Synthetic news content shared by the loopback site and the WARC corpus generator.

Articles are 20-80 KB of Chinese HTML (title, og:image, article:published_time, paragraphs),
deterministic per article number and cheap to build: paragraphs are slices of one text blob.
Lead images come from a pool of real JPEGs (50-200 KB) made once with Pillow and cached.
"""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / ".data"
JPEG_DIR = DATA / "jpeg"
JPEG_POOL = 50

# Common characters and words; random sequences of them compress about like real Chinese news.
_WORDS = (  # noqa: SIM905 - a list literal of 160 words would be far harder to read
    "中国 美国 全球 会议 总统 表示 合作 国际 关系 北京 上海 香港 台湾 新闻 社会 文化 教育 科技 网络 数据 安全"
    " 环境 气候 能源 公司 企业 投资 银行 金融 市场 股票 价格 增长 下降 政策 改革 法律 人民 军队 外交 部长 官员"
    " 调查 报告 研究 大学 学生 医院 疾病 健康 疫情 城市 农村 交通 铁路 机场 航空 旅游 体育 比赛 选手 冠军 电影"
    " 音乐 艺术 历史 传统 节日 春节 中秋 的 是 了 在 有 和 也 就 都 而 及 与 对 将 从 被 把 向 以 为 由 于 其 这"
    " 那 此 各 每 所 已经 正在 可能 必须 应该 认为 指出 强调 宣布 发表 举行 访问 会谈 签署 协议 计划 项目 发展"
    " 经济 政府 国家 地区 世界 今年 去年 明年 目前 近日 昨天 今天 上午 下午 晚上 记者 消息 报道 评论 分析 专家"
    " 学者 民众 居民 工人 农民 家庭 儿童 妇女 老人 青年 网民 媒体 电视 广播 报纸 平台 手机 人工智能 芯片 汽车"
).split()
_PUNCT = ("，", "，", "，", "。", "、", "；")
BLOB_CHARS = 1_500_000  # characters (3 UTF-8 bytes each) in the text blob


@cache
def text_blob() -> bytes:
    """About 4.5 MB of UTF-8 Chinese prose, every character 3 bytes (so any 3-aligned slice decodes)."""
    rnd = random.Random(20231006)
    parts: list[str] = []
    count = 0
    while count < BLOB_CHARS:
        word = rnd.choice(_WORDS)
        parts.append(word)
        count += len(word)
        if rnd.random() < 0.18:
            parts.append(rnd.choice(_PUNCT))
            count += 1
    text = "".join(parts)[:BLOB_CHARS]
    data = text.encode("utf-8")
    assert len(data) == 3 * BLOB_CHARS
    return data


def _slice(rnd: random.Random, chars: int) -> bytes:
    blob = text_blob()
    start = rnd.randrange(0, BLOB_CHARS - chars) * 3
    return blob[start:start + chars * 3]


def article_title(i: int) -> str:
    rnd = random.Random(i * 7919 + 1)
    return f"第{i}号新闻：" + "".join(rnd.choice(_WORDS) for _ in range(6))


def published_time(i: int) -> str:
    day, minute = divmod(i, 1440)
    return f"2024-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{minute // 60:02d}:{minute % 60:02d}:00+08:00"


def body_images(i: int) -> bytes:
    """Three body images of article i, as pages of the requisites benchmark have them: a plain one,
    a lazy-loaded one (data-src) and one with a 3-candidate srcset."""
    a, b, c = (f"/rimg/{i}-{k}.jpg".encode() for k in "abc")
    c2, c3 = (f"/rimg/{i}-c@{d}x.jpg".encode() for d in (2, 3))
    return (b'<p><img src="' + a + b'" width="400" height="300"></p>\n'
            b'<p><img class="lazy" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="' + b
            + b'" width="400" height="300"></p>\n'
            b'<p><img src="' + c + b'" srcset="' + c + b" 1x, " + c2 + b" 2x, " + c3 + b' 3x"'
            b' width="400" height="300"></p>\n')


def article_html(i: int, image_url: str, requisites: bool = False) -> bytes:
    """Article number i: 20-80 KB of UTF-8 HTML whose lead image is `image_url`; with `requisites`,
    also the host's shared script (its stylesheet is always linked) and three body images."""
    rnd = random.Random(i)
    target = rnd.randint(20_000, 80_000)
    title = article_title(i).encode("utf-8")
    image = image_url.encode("ascii")
    head = (
        b'<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8"><title>' + title + b"</title>\n"
        b'<meta property="og:title" content="' + title + b'">\n'
        b'<meta property="og:image" content="' + image + b'">\n'
        b'<meta property="article:published_time" content="' + published_time(i).encode() + b'">\n'
        b'<link rel="stylesheet" href="/static/site.css">'
        + (b'<script src="/static/app.js" defer></script>' if requisites else b"") + b"</head>\n"
        b'<body><header><a href="/">\xe9\xa6\x96\xe9\xa1\xb5</a></header><article><h1>' + title + b"</h1>\n"
        b'<figure><img src="' + image + b'" alt="lead" width="800" height="600"></figure>\n'
        + (body_images(i) if requisites else b"")
    )
    tail = b"</article><footer>bench</footer></body></html>\n"
    parts = [head]
    size = len(head) + len(tail)
    while size < target:
        chars = min(rnd.randint(150, 900), max(10, (target - size) // 3))
        para = b"<p>" + _slice(rnd, chars) + b"</p>\n"
        parts.append(para)
        size += len(para)
    parts.append(tail)
    return b"".join(parts)


def _make_jpeg(k: int) -> bytes:
    import io

    from PIL import Image, ImageDraw, ImageFilter

    rnd = random.Random(1000 + k)
    target = 50_000 + (150_000 * k) // (JPEG_POOL - 1)  # 50 KB .. 200 KB, spread over the pool
    width, height = 800, 600
    base = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(base)
    for _ in range(60):  # shapes and colours: something photo-like, not a flat colour
        x0, y0 = rnd.randrange(width), rnd.randrange(height)
        x1, y1 = x0 + rnd.randrange(40, 400), y0 + rnd.randrange(40, 300)
        colour = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        (draw.ellipse if rnd.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    base = base.filter(ImageFilter.GaussianBlur(3))
    noise = Image.effect_noise((width, height), 64).convert("RGB")
    best = b""
    for amount in (0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9):
        img = Image.blend(base, noise, amount)
        lo, hi = 20, 95
        while lo <= hi:  # the quality whose size is closest to the target, from below
            quality = (lo + hi) // 2
            out = io.BytesIO()
            img.save(out, "JPEG", quality=quality)
            data = out.getvalue()
            if len(data) <= target:
                if abs(len(data) - target) < abs(len(best) - target):
                    best = data
                lo = quality + 1
            else:
                hi = quality - 1
        if best and len(best) >= target * 0.9:
            break
    return best


def jpeg_pool() -> list[bytes]:
    """The pool of real JPEGs (made once, then read from bench/.data/jpeg/)."""
    JPEG_DIR.mkdir(parents=True, exist_ok=True)
    pool = []
    for k in range(JPEG_POOL):
        path = JPEG_DIR / f"{k:02d}.jpg"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(_make_jpeg(k))
            tmp.replace(path)
        pool.append(path.read_bytes())
    return pool


def tiny_jpeg() -> bytes:
    """A small real JPEG (a few KB), the lead image of the tiny pages of the memory benchmark."""
    path = JPEG_DIR / "tiny.jpg"
    if not path.exists():
        import io

        from PIL import Image

        JPEG_DIR.mkdir(parents=True, exist_ok=True)
        out = io.BytesIO()
        Image.effect_noise((96, 64), 40).convert("RGB").save(out, "JPEG", quality=80)
        path.with_suffix(".tmp").write_bytes(out.getvalue())
        path.with_suffix(".tmp").replace(path)
    return path.read_bytes()


def tiny_html(i: int, image_url: str) -> bytes:
    """A small article page (about 2 KB) for the streamed-seed memory benchmark."""
    rnd = random.Random(i)
    title = article_title(i).encode("utf-8")
    return (
        b'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>' + title + b"</title>"
        b'<meta property="og:image" content="' + image_url.encode("ascii") + b'">'
        b'<meta property="article:published_time" content="' + published_time(i).encode() + b'"></head>'
        b"<body><article><h1>" + title + b"</h1><p>" + _slice(rnd, 500) + b"</p></article></body></html>\n"
    )


def seed_document(url: str, title: str, epoch_ms: int, image_url: str) -> str:
    """A seed document as README.md describes it (feed item with the lead image's <img>)."""
    return (
        f"<!--{epoch_ms}-->\n[{title}]({url})\n------\n\n"
        f'<div>06/10/2023 - 02:11</div><img src="{image_url}"><p>{title}。摘要。</p>\n'
    )


if __name__ == "__main__":
    sizes = [len(j) for j in jpeg_pool()]
    print(f"{len(sizes)} JPEGs, {min(sizes)}..{max(sizes)} bytes")
    html = [len(article_html(i, f"/img/{i}.jpg")) for i in range(200)]
    print(f"articles {min(html)}..{max(html)} bytes, mean {sum(html) / len(html):.0f}")
