"""Typed configuration: defaults < the `archiver:` section of config.yaml < command-line flags.

Loaded once by the CLI and passed down; nothing reads the environment or files behind its back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archiver.errors import ConfigError, UsageError

MAX_AUTO_PROCESSES = 4
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.I)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, what: str = "interval", minimum: float = 1.0) -> float:
    """Seconds from '30s', '15m', '1h', '2d' or plain seconds; UsageError naming `what` otherwise."""
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"cannot read the {what} {text!r}: use e.g. 30s, 15m, 1h")
    seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if seconds < minimum:
        raise UsageError(f"the {what} must be at least {minimum:g} second{'s' if minimum != 1 else ''}")
    return seconds


@dataclass(frozen=True)
class Config:
    root: Path = field(default_factory=Path.cwd)
    collection: str = "news"
    workers: int = 96
    processes: int = 0
    cluster: str = ""
    storage: str = ""
    storage_endpoint: str = ""
    # the `storage_options:` mapping as canonical JSON (a Config is hashable): see storage.StorageOptions
    storage_options: str = ""
    shards: int = 1024
    batch_size: int = 100
    batch_wait: float = 5.0
    timeout: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_redirects: int = 10
    max_size: int = 100 * 1024 * 1024
    allow_private: bool = False
    ca_bundle: str = ""
    warc_max_size: int = 1_000_000_000
    warc_prefix: str = "archiver"
    user_agent: str = "archiver/0.1 (news preservation; WARC capture)"
    lead_images: bool = True
    requisites: bool = True
    requisites_max: int = 150
    requisites_max_bytes: int = 25 * 1024 * 1024
    requisites_max_age: float = 86_400.0
    srcset_max: int = 8
    recheck_min: float = 3_600.0
    recheck_max: float = 7 * 86_400.0
    feed_max_items: int = 10_000
    feed_max_item_size: int = 1024 * 1024
    retries: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    host_concurrency: int = 2
    host_delay: float = 1.0

    def replace(self, **changes: Any) -> Config:
        """A copy with `changes` applied; None values mean "not given" and are ignored."""
        given = {k: v for k, v in changes.items() if v is not None}
        unknown = set(given) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return _validated(dataclasses.replace(self, **given))

    @property
    def storage_settings(self) -> dict[str, Any]:
        """`storage_options` as the mapping config.yaml gave."""
        return dict(json.loads(self.storage_options)) if self.storage_options else {}

    @property
    def capture_processes(self) -> int:
        """Worker processes capture uses: `processes`, or with 0 one per core, up to 4 (a Python
        process runs one thread at a time, so capture needs one per core to use them all)."""
        return self.processes or min(MAX_AUTO_PROCESSES, os.cpu_count() or 1)


# The comment printed above each key in config.yaml, so that the file documents itself.
KEY_HELP: dict[str, str] = {
    "collection": "collection used when -c/--collection is not given",
    "workers": "seeds captured in parallel (threads, shared out over the processes); each host still gets "
               "no more than host_concurrency",
    "processes": "worker processes for capture; 0: one per core, up to 4 (seeds are split by host)",
    "cluster": "Dask scheduler address (tcp://host:8786) or scheduler file to run capture and index on; "
               "empty: this machine",
    "storage": "where WARC files and fragments go: empty for collections/<name>/, or s3://bucket/prefix "
               "(credentials from AWS_* variables); each collection gets <prefix>/<name>/",
    "storage_endpoint": "S3 endpoint for storage when not AWS itself (MinIO, Ceph): http(s)://host:port",
    "storage_options": "more settings of the object store, a mapping (region, addressing_style, part_size, "
                       "connect_timeout, max_attempts, spool_dir, ...: docs/storage.md); credentials are best "
                       "left to the AWS_* environment",
    "shards": "seeds are grouped into this many shards by host; one batch per shard runs at a time",
    "batch_size": "seeds per capture batch (one task: its own WARC file and metadata fragment)",
    "batch_wait": "seconds a partly filled batch waits for more seeds of its shard before it runs",
    "timeout": "total deadline in seconds for one HTTP request, body included",
    "connect_timeout": "seconds to wait for a TCP/TLS connection",
    "read_timeout": "seconds to wait for the next bytes from the server (whole seconds)",
    "max_redirects": "redirect hops followed before giving up with too_many_redirects",
    "max_size": "bytes kept of one response; longer bodies are cut and marked WARC-Truncated",
    "allow_private": "allow fetching loopback/private/link-local addresses (off: SSRF guard)",
    "ca_bundle": "PEM file (relative to the archive root) of the certificate authorities https servers are "
                 "checked against; empty: certifi's copy of Mozilla's",
    "warc_max_size": "start a new WARC file once the current one reaches this many bytes",
    "warc_prefix": "first part of every WARC file name",
    "user_agent": "User-Agent header sent with every request",
    "lead_images": "also capture each article's lead image",
    "requisites": "also capture what each page needs to look as it did: stylesheets, scripts, fonts, images",
    "requisites_max": "requisites captured for one page at most; the rest are counted as skipped",
    "requisites_max_bytes": "bytes of requisites fetched for one page at most (and of one requisite)",
    "requisites_max_age": "a requisite captured this long ago is fetched again (seconds, or 30m, 12h, 1d, ...; "
                          "0: every time); an identical one is kept as a revisit record, no body",
    "srcset_max": "candidates of one srcset captured at most",
    "recheck_min": "recapture checks an article this long after it was captured or changed (seconds, or 30m, 1h, "
                   "...); the wait doubles while it stays unchanged",
    "recheck_max": "the longest wait between two checks of an article (seconds, or 12h, 7d, ...)",
    "feed_max_items": "items read of one RSS/Atom feed; the rest are reported, not captured",
    "feed_max_item_size": "bytes of one feed item (its seed document); a larger item is reported, not captured",
    "retries": "extra tries after 429/5xx answers, cut bodies and connection errors",
    "backoff_base": "seconds before the first retry; doubled each time, with jitter",
    "backoff_max": "longest wait between two tries, in seconds",
    "retry_after_max": "longest Retry-After wait honoured, in seconds",
    "host_concurrency": "requests in flight at once to one host",
    "host_delay": "seconds between the starts of two requests to one host",
}

CONFIG_KEYS = tuple(KEY_HELP)
# keys that also take a duration: 30m, 12h, 1d
DURATIONS = frozenset({"requisites_max_age", "recheck_min", "recheck_max"})


def _validated(cfg: Config) -> Config:
    checks = [
        (cfg.workers >= 1, "workers must be at least 1"),
        (cfg.processes >= 0, "processes must not be negative (0: one per core)"),
        (cfg.shards >= 1, "shards must be at least 1"),
        (cfg.batch_size >= 1, "batch_size must be at least 1"),
        (cfg.batch_wait >= 0, "batch_wait must not be negative"),
        (cfg.timeout > 0, "timeout must be positive"),
        (cfg.connect_timeout > 0, "connect_timeout must be positive"),
        (cfg.read_timeout > 0, "read_timeout must be positive"),
        (cfg.max_redirects >= 0, "max_redirects must not be negative"),
        (cfg.retries >= 0, "retries must not be negative"),
        (cfg.backoff_base >= 0 and cfg.backoff_max >= 0, "backoff times must not be negative"),
        (cfg.retry_after_max >= 0, "retry_after_max must not be negative"),
        (cfg.host_concurrency >= 1, "host_concurrency must be at least 1"),
        (cfg.host_delay >= 0, "host_delay must not be negative"),
        (cfg.max_size > 0, "max_size must be positive"),
        (cfg.requisites_max >= 0 and cfg.requisites_max_bytes >= 1 and cfg.requisites_max_age >= 0
         and cfg.srcset_max >= 1, "requisites_max, requisites_max_bytes, requisites_max_age and srcset_max "
                                  "must not be negative (srcset_max and requisites_max_bytes at least 1)"),
        (60 <= cfg.recheck_min <= cfg.recheck_max, "recheck_min must be at least 60 seconds and at most recheck_max"),
        (cfg.feed_max_items >= 1 and cfg.feed_max_item_size >= 1024,
         "feed_max_items must be at least 1 and feed_max_item_size at least 1024"),
        (cfg.warc_max_size > 0, "warc_max_size must be positive"),
        (bool(cfg.warc_prefix) and "/" not in cfg.warc_prefix, "warc_prefix must be a plain name"),
        (not cfg.ca_bundle or (cfg.root / cfg.ca_bundle).is_file(), f"ca_bundle {cfg.ca_bundle!r} is not a file"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    return cfg


def load(root: Path, **overrides: Any) -> Config:
    """Read `root/config.yaml` if present, then apply `overrides` (None = not given)."""
    root = root.resolve()
    values: dict[str, Any] = {}
    path = root / "config.yaml"
    if path.exists():
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        if not isinstance(doc, dict):
            raise ConfigError(f"{path} must be a YAML mapping")
        section = doc.get("archiver") or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: the 'archiver:' section must be a mapping")
        values = dict(section)
    base = Config(root=root)
    types = {f.name: f.type for f in dataclasses.fields(Config)}
    for key, value in values.items():
        if key not in KEY_HELP:
            raise ConfigError(f"{path}: unknown key archiver.{key} (known: {', '.join(CONFIG_KEYS)})")
        values[key] = _coerce(path, key, value, str(types[key]))
    try:
        cfg = base.replace(**values)
        return cfg.replace(**overrides)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (check {path} and the command-line flags)") from exc


def _coerce(path: Path, key: str, value: Any, type_name: str) -> Any:
    if key in DURATIONS and isinstance(value, str):
        try:
            return parse_duration(value, f"archiver.{key}", minimum=0)
        except UsageError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    if key == "storage_options":
        if value is None:
            return ""
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: archiver.storage_options must be a mapping (key: value lines), not {value!r}")
        return json.dumps(value, sort_keys=True)
    wanted: Any = {"int": int, "float": (int, float), "bool": bool, "str": str}[type_name]
    if (isinstance(value, bool) and type_name != "bool") or not isinstance(value, wanted):
        kind = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "a string"}[type_name]
        raise ConfigError(f"{path}: archiver.{key} must be {kind}, not {value!r}")
    return float(value) if type_name == "float" else value
