"""A collection's replay index in the root's config.yaml, under pywb's own `collections:` key.

By default pywb finds a collection's index by listing `collections/<name>/indexes/` (every `*.cdx`,
`*.cdxj`, `*.idx` and `*.summary` there, merged). A collection whose replay reads another index (a
zipnum cluster, Redis, an OutbackCDX server) needs an entry of its own, and pywb 2.10.0 reads only one
configuration file (./config.yaml, or $PYWB_CONFIG_FILE) and nothing it includes, so the entry goes
there:

    collections:
      news:
        index: zipnum+collections/news/indexes/zipnum/index.idx
        archive_paths: collections/news/archive/

pywb then serves `news` from that index (a "fixed" collection) instead of from its directory.
`archive_paths` must be given: for a fixed collection pywb takes the top-level `archive_paths` as it
is (`archive`), not under the collection's folder.

The file is the user's, comments included, so it is edited as text: only the collection's entry is
added or replaced, and the result is parsed back and compared with what was meant before it replaces
the file. A layout this cannot edit safely (a flow-style `collections: {...}`, say) is refused with
the lines to add by hand. Not ruamel.yaml's round trip: it keeps comments, but it writes the whole
file out again in its own style (a user's 4-space indentation became 2, comment columns moved, a
long quoted value was folded at 80 columns), where this changes only the entry's own lines.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from archiver._fs import atomic_write, file_lock
from archiver.collection import check_collection_name
from archiver.errors import ConfigError

CONFIG_NAME = "config.yaml"
MANAGED_COMMENT = "# written by `archiver index`; pywb reads this collection's index from here"


def read_config(root: Path) -> dict[str, Any]:
    """The root's config.yaml as pywb sees it (an empty mapping when there is none)."""
    path = root / CONFIG_NAME
    if not path.exists():
        return {}
    return _parse(path, path.read_text(encoding="utf-8"))


def collection_index(root: Path, name: str) -> str | None:
    """The `index` pywb is told to read for collection `name`, or None when pywb lists its indexes/."""
    collections = read_config(root).get("collections")
    entry = collections.get(name) if isinstance(collections, dict) else None
    if isinstance(entry, dict):
        index = entry.get("index") or entry.get("index_paths")
        return index if isinstance(index, str) else None
    return entry if isinstance(entry, str) else None


def archive_prefix(root: Path, name: str) -> str:
    """Where pywb finds collection `name`'s WARC files, as pywb itself builds it for a directory
    collection: `<collections_root>/<name>/<archive_paths>/`, relative to the root (pywb's working
    directory)."""
    doc = read_config(root)
    base = doc.get("collections_root", "collections")
    archive = doc.get("archive_paths", "archive")
    if not isinstance(base, str) or not isinstance(archive, str):
        raise ConfigError(f"{root / CONFIG_NAME}: collections_root and archive_paths must be strings here")
    if "://" in archive:
        return archive  # WARC files served from elsewhere: pywb uses the URL as it is
    return os.path.join(base, name, archive, "")


def set_collection_index(root: Path, name: str, index: str, archive_paths: str | None = None) -> bool:
    """Point pywb's collection `name` at `index` in the root's config.yaml, keeping everything else.

    `archive_paths` defaults to the collection's own archive/ folder (see `archive_prefix`). Returns
    whether the file changed: pywb reads it when it starts, so a running replay needs a restart then.
    """
    check_collection_name(name)
    path = root / CONFIG_NAME
    if not path.exists():
        raise ConfigError(f"{root} has no {CONFIG_NAME}: run 'archiver init' there first")
    with file_lock(root / ".config.lock"):  # two collections indexed at once both edit it
        text = path.read_text(encoding="utf-8")
        doc = _parse(path, text)
        entry = {"index": index, "archive_paths": archive_paths or archive_prefix(root, name)}
        wanted = dict(doc)
        collections = wanted.get("collections")
        wanted["collections"] = {**(collections if isinstance(collections, dict) else {}), name: entry}
        new_text = _edited(text, doc, name, entry)
        if new_text is None or _parse(path, new_text) != wanted:
            raise ConfigError(
                f"cannot add collection {name!r} to the 'collections:' of {path} without disturbing it; "
                f"add this entry to it by hand:\n{_entry_text(name, entry, '  ')}")
        if new_text == text:
            return False
        # pywb never reads a half-written config; the user's file keeps its mode
        with atomic_write(path, encoding="utf-8", mode=path.stat().st_mode & 0o7777) as out:
            out.write(new_text)
        return True


def _parse(path: Path, text: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} must be a YAML mapping")
    return doc


def _key(name: str) -> str:
    """`name` as a YAML key: plain unless YAML would read it as something else (`true`, `123`...)."""
    loaded = yaml.safe_load(f"{name}: x")
    return name if isinstance(loaded, dict) and list(loaded) == [name] else json.dumps(name)


def _entry_text(name: str, entry: dict[str, str], indent: str) -> str:
    # values as JSON strings: valid YAML whatever characters a URL or path holds
    lines = [f"{indent}{_key(name)}:  {MANAGED_COMMENT}"]
    lines += [f"{indent}  {key}: {json.dumps(value, ensure_ascii=False)}" for key, value in entry.items()]
    return "\n".join(lines) + "\n"


_TOP_COLLECTIONS = re.compile(r"collections[ \t]*:[ \t]*(#.*)?")


def _content(line: str) -> bool:
    """A line that holds YAML (not blank, not only a comment)."""
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _edited(text: str, doc: dict[str, Any], name: str, entry: dict[str, str]) -> str | None:
    """`text` with collection `name`'s entry added or replaced; None when the layout is not the
    plain block style this can edit."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if "collections" not in doc:
        block = "\ncollections:\n" + _entry_text(name, entry, "  ")
        return "".join(lines) + block
    headers = [i for i, line in enumerate(lines) if _TOP_COLLECTIONS.fullmatch(line.rstrip("\r\n"))]
    if len(headers) != 1:
        return None
    start = headers[0] + 1
    end = start  # one past the last line of the block (its last indented content line)
    for i in range(start, len(lines)):
        if _content(lines[i]):
            if _indent(lines[i]) == 0:
                break
            end = i + 1
    children = [i for i in range(start, end) if _content(lines[i])]
    indent = " " * (_indent(lines[children[0]]) if children else 2)
    own = re.compile(re.escape(indent) + r"(" + "|".join(re.escape(k) for k in {name, json.dumps(name), f"'{name}'"})
                     + r")[ \t]*:")
    found = [i for i in children if _indent(lines[i]) == len(indent) and own.match(lines[i])]
    new_entry = _entry_text(name, entry, indent)
    if not found:
        return "".join(lines[:end]) + new_entry + "".join(lines[end:])
    first = found[0]
    last = first + 1  # the entry runs on while lines are indented deeper than its key
    for i in range(first + 1, end):
        if _content(lines[i]):
            if _indent(lines[i]) <= len(indent):
                break
            last = i + 1
    return "".join(lines[:first]) + new_entry + "".join(lines[last:])
