"""Create an archive root: a pywb working directory with archiver's own settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from archiver.collection import Collection
from archiver.config import CONFIG_KEYS, KEY_HELP, Config

_PYWB_SETTINGS = """\
# pywb settings: https://pywb.readthedocs.io/en/latest/manual/configuring.html
# Collections live in collections/<name>/ with archive/ (WARC files) and indexes/ (CDXJ).
collections_root: collections
archive_paths: archive
index_paths: indexes
# Framed replay shows pywb's banner around the archived page; unframed pages are at <ts>mp_/.
framed_replay: true
# Memento (RFC 7089) TimeGates and TimeMaps for every collection.
enable_memento: true
"""


TEMPLATES_DIR = "templates"


def shipped_templates() -> dict[str, bytes]:
    """pywb templates that archiver ships (file name -> content), each fixing pywb's own.

    pywb reads `<root>/templates/` before its built-in templates; each file's header says what
    it fixes (frame_insert.html: the reflected XSS of pywb issue #923).
    """
    folder = resources.files("archiver.replay") / TEMPLATES_DIR
    return {item.name: item.read_bytes() for item in folder.iterdir()
            if item.is_file() and item.name.endswith(".html")}


def install_templates(root: Path) -> list[str]:
    """Write the shipped templates into `<root>/templates/`; a file already there is left alone.

    Returns the paths written, relative to the root. A template the user has changed stays theirs.
    """
    folder = root / TEMPLATES_DIR
    folder.mkdir(exist_ok=True)
    written = []
    for name, content in sorted(shipped_templates().items()):
        target = folder / name
        if target.exists():
            continue
        partial = folder / f".{name}.part"
        partial.write_bytes(content)
        os.replace(partial, target)  # never leave a half-written template for pywb to load
        written.append(f"{TEMPLATES_DIR}/{name}")
    return written


def config_text(cfg: Config) -> str:
    """config.yaml as written by `archiver init`: pywb's settings, then archiver's, all commented."""
    lines = [_PYWB_SETTINGS, "# archiver settings; command-line flags override them.", "archiver:"]
    for key in CONFIG_KEYS:
        value = getattr(cfg, key)
        rendered = ("true" if value else "false") if isinstance(value, bool) else (
            f'"{value}"' if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value))
        lines.append(f"  # {KEY_HELP[key]}")
        lines.append(f"  {key}: {rendered}")
    return "\n".join(lines) + "\n"


@dataclass
class InitReport:
    root: Path
    created: list[str] = field(default_factory=list)


def init(cfg: Config, collection_name: str | None = None) -> InitReport:
    """Create config.yaml, collections/, seeds/ and templates/ under the root; leave what exists alone."""
    report = InitReport(cfg.root)
    cfg.root.mkdir(parents=True, exist_ok=True)
    config_path = cfg.root / "config.yaml"
    if not config_path.exists():
        config_path.write_text(config_text(Config(root=cfg.root)), encoding="utf-8")
        report.created.append("config.yaml")
    for name in ("collections", "seeds"):
        path = cfg.root / name
        if not path.exists():
            path.mkdir()
            report.created.append(name + "/")
    report.created.extend(install_templates(cfg.root))
    if collection_name:
        collection = Collection.at(cfg.root, collection_name)
        if not collection.exists():
            collection.create()
            report.created.append(f"collections/{collection.name}/")
    return report
