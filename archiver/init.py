"""Create an archive root: a pywb working directory with archiver's own settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from archiver._fs import atomic_write
from archiver.collection import Collection
from archiver.config import CONFIG_KEYS, KEY_HELP, Config
from archiver.replay.templates import install_templates

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


def config_text(cfg: Config) -> str:
    """config.yaml as written by `archiver init`: pywb's settings, then archiver's, all commented."""
    lines = [_PYWB_SETTINGS, "# archiver settings; command-line flags override them.", "archiver:"]
    for key in CONFIG_KEYS:
        value = getattr(cfg, key)
        if key == "storage_options":  # a mapping, kept as JSON, which is YAML too
            value_text = value or "{}"
            lines.append(f"  # {KEY_HELP[key]}")
            lines.append(f"  {key}: {value_text}")
            continue
        rendered = ("true" if value else "false") if isinstance(value, bool) else (
            f'"{value}"' if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value))
        lines.append(f"  # {KEY_HELP[key]}")
        lines.append(f"  {key}: {rendered}")
    return "\n".join(lines) + "\n"


@dataclass
class InitReport:
    root: Path
    created: list[str] = field(default_factory=list)


def init(cfg: Config, with_collection: bool = False) -> InitReport:
    """Create config.yaml, collections/, seeds/ and templates/ under the root, and with
    `with_collection` the folder of `cfg.collection`; leave what exists alone."""
    report = InitReport(cfg.root)
    cfg.root.mkdir(parents=True, exist_ok=True)
    config_path = cfg.root / "config.yaml"
    if not config_path.exists():
        with atomic_write(config_path, encoding="utf-8") as out:
            out.write(config_text(Config(root=cfg.root)))
        report.created.append("config.yaml")
    for name in ("collections", "seeds"):
        path = cfg.root / name
        if not path.exists():
            path.mkdir()
            report.created.append(name + "/")
    report.created.extend(install_templates(cfg.root))
    if with_collection:
        collection = Collection.of(cfg)
        if not collection.exists():
            collection.create()
            report.created.append(f"collections/{collection.name}/")
    return report
