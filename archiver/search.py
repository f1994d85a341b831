"""Full-text search over the articles of a collection (SQLite FTS5, trigram tokenizer).

The trigram tokenizer matches any substring of three or more characters, so Chinese words are
found without word segmentation. Shorter terms (most Chinese words have two characters) are
matched as plain substrings, which scans the texts: slower on large collections, but found.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import UsageError
from archiver.index.fulltext import open_readonly, shard_paths, update_search
from archiver.index.metadata import Store, readonly_uri

SNIPPET_CHARS = 40


@dataclass(frozen=True)
class Hit:
    url: str
    title: str
    snippet: str  # [matched] text in context
    replay_path: str
    seed_time: str
    capture_time: str


def search(cfg: Config, query: str, limit: int = 20,
           progress: Callable[[int, int], None] | None = None) -> list[Hit]:
    """The articles whose title or text contain every term of `query`, best first.

    Texts that capture or index queued since the last search are indexed first (`progress` is
    told how far that has got): every captured article is searchable.
    """
    terms = query.split()
    if not terms:
        raise UsageError("give something to search for")
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    collection = Collection.of(cfg)
    if not collection.db_path.exists():
        raise UsageError(f"collection {collection.name!r} has no index under {cfg.root} (capture something first)")
    update_search(collection, progress)
    long_terms = [t for t in terms if len(t) >= 3]
    short_terms = [t for t in terms if len(t) < 3]
    where: list[str] = []
    params: list[object] = []
    if long_terms:  # each term quoted: the user's text is never FTS5 query syntax
        where.append("search MATCH ?")
        params.append(" AND ".join('"' + t.replace('"', '""') + '"' for t in long_terms))
    for term in short_terms:
        pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(s.title LIKE ? ESCAPE '\\' OR s.text LIKE ? ESCAPE '\\')")
        params += [pattern, pattern]
    # ranked within each shard, then merged: bm25 (lower is better) or newest seed first
    order = "bm25(search)" if long_terms else "-a.seed_timestamp"
    sql = (
        f"SELECT {order} AS rank_key, s.url, s.title, s.text, a.replay_path, a.seed_time, a.capture_time "
        "FROM search AS s JOIN meta.articles AS a ON a.url = s.url "
        f"WHERE {' AND '.join(where)} ORDER BY rank_key IS NULL, rank_key LIMIT ?"
    )
    params.append(limit)
    shards = [path for path in shard_paths(collection.search_path) if path.exists()]
    if not shards:
        return []
    rows = []
    with Store(collection.db_path, readonly=True) as store:
        for path in shards:
            with closing(open_readonly(path)) as db:
                db.execute("ATTACH DATABASE ? AS meta", (readonly_uri(store.path),))
                rows += db.execute(sql, params).fetchall()
    rows.sort(key=lambda row: (row[0] is None, row[0] or 0, row[1]))
    return [Hit(url, title, _snippet(text, terms), replay, seed_time, capture_time)
            for _, url, title, text, replay, seed_time, capture_time in rows[:limit]]


def _snippet(text: str, terms: list[str]) -> str:
    """The text around the first term found, with every term marked [like this]."""
    lowered = text.lower()
    found = [i for i in (lowered.find(t.lower()) for t in terms) if i >= 0]
    start = max(0, min(found) - SNIPPET_CHARS) if found else 0
    end = min(len(text), start + 3 * SNIPPET_CHARS)
    piece = " ".join(text[start:end].split())
    for term in sorted(terms, key=len, reverse=True):
        piece = re.sub(re.escape(term), lambda m: f"[{m.group(0)}]", piece, flags=re.IGNORECASE)
    return ("…" if start else "") + piece + ("…" if end < len(text) else "")
