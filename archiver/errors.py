"""One exception tree for the whole library; cli.py turns these into exit codes."""

from __future__ import annotations


class ArchiverError(Exception):
    """Base of every error archiver raises on purpose. `exit_code` is what the CLI returns."""

    exit_code = 1


class UsageError(ArchiverError):
    """The user asked for something that cannot be done as asked (bad name, bad flag)."""

    exit_code = 2


class ConfigError(ArchiverError):
    """config.yaml or the archive root is missing, unreadable or wrong."""

    exit_code = 2


class SeedError(ArchiverError):
    """A seed document or URL list could not be read. `reason` is machine-readable."""

    def __init__(self, source: str, reason: str, detail: str) -> None:
        super().__init__(f"{source}: {detail} ({reason})")
        self.source = source
        self.reason = reason
        self.detail = detail


class FetchError(ArchiverError):
    """A fetch failed before a complete HTTP response arrived. `reason` is machine-readable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class WarcError(ArchiverError):
    """A WARC file is damaged or cannot be read."""


class ReplayError(ArchiverError):
    """pywb could not be started or stopped."""


class ReplayIndexError(ArchiverError):
    """A replay index (zipnum cluster, Redis) could not be built, loaded or reached."""


class ClusterError(ArchiverError):
    """The workers (local processes or a Dask cluster) could not be reached, or died."""
