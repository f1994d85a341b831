"""Where a collection's archive files and metadata fragments live: a local directory or an object store.

The commit protocol needs a few operations with the same meaning everywhere (`Storage`): a file
appears under its name whole or not at all, a re-run replaces it, and what is listed is only
what was committed. `open_storage` gives `LocalStorage` for a path (or file://) and
`FsspecStorage` for s3://bucket/prefix (MinIO, Ceph, AWS; any other fsspec URL works too).

A WARC file is always written on local disk first, as `staging_path(name)` (`<name>.open`), and
then `publish`ed. Writing it in place on the store is not possible: WARC writing appends record
by record, fsyncs each seed's records and, after a crash, cuts the file back to its last complete
record; S3 has no append, no rename and no partial object. What S3 does have is exactly the
commit property wanted: a PUT (or a multipart upload, on completion) makes an object visible
whole, atomically, replacing any previous one. Locally the same is os.replace plus fsyncs.

Names are relative POSIX paths under the store's root ("archive/x.warc.gz",
"fragments/0001.parquet"). A last component starting with "." or a name ending in ".open" is
reserved for files in flight and is never listed.

Errors from the filesystem, fsspec, botocore or aiohttp come out as `StorageError` subclasses
(errors.py) whose message says what to check.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, NoReturn

from archiver._fs import atomic_write, fsync_dir
from archiver.collection import OPEN_SUFFIX, WARC_SUFFIXES, Collection
from archiver.config import Config
from archiver.errors import ConfigError, MissingObjectError, StorageConfigError, StorageError

MiB = 1024 * 1024


@dataclass(frozen=True)
class StorageOptions:
    """How to reach an object store. Anything left unset comes from botocore's usual sources:
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL_S3,
    AWS_PROFILE and ~/.aws (and, without AWS_EC2_METADATA_DISABLED=true, the EC2 metadata service).
    """

    endpoint_url: str | None = None  # MinIO, Ceph, moto: "http://host:9000"; None: AWS itself
    key: str | None = None
    secret: str | None = None
    token: str | None = None
    region: str | None = None
    anonymous: bool = False  # unsigned requests, for public buckets
    # "path" (http://host/bucket/key) is what MinIO and Ceph answer by default, and the default
    # whenever an endpoint is set; AWS itself wants "virtual" (http://bucket.host/key) or "auto".
    addressing_style: Literal["auto", "path", "virtual"] | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 3  # tries per request, the first included (retried: connection errors, 5xx, throttling)
    part_size: int = 16 * MiB  # multipart upload part; a file under two parts goes in one PUT
    max_concurrency: int = 4  # parts in flight per upload: memory is about part_size times this
    read_block_size: int = 1 * MiB  # open_read fetches this much ahead (one ranged GET)
    spool_dir: Path | None = None  # where staging_path puts .open files; None: the temp dir
    extra: Mapping[str, Any] = field(default_factory=dict)  # passed to the fsspec filesystem as is

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> StorageOptions:
        """From config.yaml's mapping; unknown keys are an error rather than silently ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(mapping) - names
        if unknown:
            raise ConfigError(f"unknown storage option(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(names))}")
        values = dict(mapping)
        if values.get("spool_dir") is not None:
            values["spool_dir"] = Path(values["spool_dir"])
        return cls(**values).checked()

    def checked(self) -> StorageOptions:
        if self.addressing_style not in (None, "auto", "path", "virtual"):
            raise ConfigError(f"addressing_style must be auto, path or virtual, not {self.addressing_style!r}")
        if self.part_size < 5 * MiB:
            raise ConfigError("part_size must be at least 5 MiB (S3's smallest multipart part)")
        if self.max_concurrency < 1 or self.max_attempts < 1:
            raise ConfigError("max_concurrency and max_attempts must be at least 1")
        if self.read_block_size < 1 or self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ConfigError("read_block_size, connect_timeout and read_timeout must be positive")
        if bool(self.key) != bool(self.secret):
            raise ConfigError("give both key and secret, or neither")
        return self

    def endpoint(self) -> str | None:
        """The endpoint requests go to, as botocore will pick it (for messages and addressing)."""
        return self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")

    def s3fs_options(self) -> dict[str, Any]:
        style = self.addressing_style or ("path" if self.endpoint() else "auto")
        config: dict[str, Any] = {
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            # total_max_attempts counts the first try; botocore's own max_attempts key counts retries only
            "retries": {"total_max_attempts": self.max_attempts, "mode": "standard"},
            "s3": {"addressing_style": style},
        }
        options: dict[str, Any] = {
            "anon": self.anonymous,
            "config_kwargs": config,
            "max_concurrency": self.max_concurrency,
            # other workers publish into the same prefix: a cached listing would hide their files
            "use_listings_cache": False,
        }
        if self.endpoint_url:
            options["endpoint_url"] = self.endpoint_url
        if self.key:
            options["key"], options["secret"] = self.key, self.secret
        if self.token:
            options["token"] = self.token
        if self.region:
            options["client_kwargs"] = {"region_name": self.region}
        return {**options, **self.extra}

    def s3_fields_unset(self) -> bool:
        """True when no S3-only field was changed (so the options suit any fsspec filesystem)."""
        return self == StorageOptions(extra=self.extra, spool_dir=self.spool_dir)


def open_storage(url_or_path: str | Path, options: StorageOptions | Mapping[str, Any] | None = None) -> Storage:
    """The store at `url_or_path`: a directory (path or file://), or s3://bucket/prefix or any fsspec URL."""
    opts = options if isinstance(options, StorageOptions) else StorageOptions.from_mapping(options or {})
    opts = opts.checked()
    text = str(url_or_path)
    if isinstance(url_or_path, Path) or "://" not in text:
        return LocalStorage(Path(text))
    if text.startswith("file://"):
        return LocalStorage(Path(text.removeprefix("file://")))
    protocol = text.split("://", 1)[0]
    if protocol in ("s3", "s3a"):
        fs_options = opts.s3fs_options()
    elif opts.s3_fields_unset():
        fs_options = dict(opts.extra)
    else:
        raise ConfigError(f"{text}: endpoint_url, key, secret and the other S3 options apply to s3:// only; "
                          "pass options for this filesystem in `extra`")
    if not text.split("://", 1)[1].strip("/"):
        raise StorageConfigError(f"{text}: give a bucket (and optionally a prefix): s3://bucket/prefix")
    return FsspecStorage(text.rstrip("/"), opts, fs_options)


class Storage(ABC):
    """Files under one root, each appearing whole when published; publishing a name again replaces it whole."""

    url_root: str  # what the names are relative to, for messages

    @abstractmethod
    def staging_path(self, name: str) -> Path:
        """Local path to write `name` at before `publish`: `<name>.open`, its parent created."""

    @abstractmethod
    def publish(self, local_file: Path, name: str) -> str:
        """Make the complete `local_file` visible as `name`, atomically, replacing any earlier one.

        The local file is consumed (moved, or removed after upload) on success and left in place on
        failure, so that the caller can retry. Returns url(name).
        """

    @abstractmethod
    def exists(self, name: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str = "", suffix: str = "") -> list[str]:
        """Names of the committed files starting with `prefix` and ending with `suffix`, sorted."""

    @abstractmethod
    def open_read(self, name: str) -> IO[bytes]:
        """A binary, seekable reader; on S3 each read past the buffer is one ranged GET."""

    def read_bytes(self, name: str) -> bytes:
        with self.open_read(name) as fh:
            return fh.read()

    @abstractmethod
    def remove(self, name: str) -> None:
        """Delete `name`; nothing happens when it does not exist."""

    @abstractmethod
    def size(self, name: str) -> int: ...

    @abstractmethod
    def url(self, name: str) -> str:
        """Where `name` is, for messages, indexes and pywb: a local path, or s3://bucket/key."""


def check_name(name: str) -> str:
    """A relative POSIX path that stays under the root and is not reserved for files in flight."""
    parts = name.split("/")
    if (not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts)
            or parts[-1].startswith(".") or name.endswith(OPEN_SUFFIX)):
        raise StorageError(f"invalid storage name {name!r}: use a relative path like 'archive/x.warc.gz', "
                           f"with no '..', empty part, leading '.' in the file name, or '{OPEN_SUFFIX}' ending")
    return name


def _check_prefix(prefix: str) -> str:
    if prefix.startswith("/") or "\\" in prefix or ".." in prefix.split("/"):
        raise StorageError(f"invalid storage prefix {prefix!r}")
    return prefix


def _may_hold(folder: str, prefix: str) -> bool:
    """Can a name under `folder/` start with `prefix`?"""
    return (folder + "/").startswith(prefix) or prefix.startswith(folder + "/")


def _listed(name: str, prefix: str, suffix: str) -> bool:
    return (name.startswith(prefix) and name.endswith(suffix) and not name.endswith(OPEN_SUFFIX)
            and not name.rsplit("/", 1)[-1].startswith("."))


class LocalStorage(Storage):
    """A directory. Publishing is fsync, rename, fsync of the directory: durable across power loss."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.url_root = str(self.root)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    def staging_path(self, name: str) -> Path:
        # beside the final name: same filesystem, so publish is a rename, and a leftover .open is
        # where warc/write.mend already looks for one
        path = self._path(name)
        with self._errors(name):
            path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(path.name + OPEN_SUFFIX)

    def publish(self, local_file: Path, name: str) -> str:
        target = self._path(name)
        with self._errors(name):
            target.parent.mkdir(parents=True, exist_ok=True)
            with local_file.open("rb") as fh:
                os.fsync(fh.fileno())  # the data is on disk before a name points at it
            try:
                os.replace(local_file, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:  # another filesystem: copy beside the target, then rename
                    raise
                with atomic_write(target, mode=0o600) as out:
                    _copy(local_file, out)
                local_file.unlink()
            fsync_dir(target.parent)
        return str(target)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def list(self, prefix: str = "", suffix: str = "") -> list[str]:
        _check_prefix(prefix)
        start = self.root / prefix.rpartition("/")[0]  # walk only the folder the prefix names
        names: list[str] = []
        with self._errors(prefix):
            for folder, dirs, files in os.walk(start, onerror=_unless_missing):
                base = Path(folder).relative_to(self.root).as_posix()
                # descend only where the prefix can match: listing indexes/parts- must not walk
                # every fragment in indexes/fragments/
                dirs[:] = [d for d in dirs if _may_hold(d if base == "." else f"{base}/{d}", prefix)]
                for file in files:
                    name = file if base == "." else f"{base}/{file}"
                    # regular files only (symbolic links to them too): never a FIFO or a device
                    if _listed(name, prefix, suffix) and os.path.isfile(os.path.join(folder, file)):
                        names.append(name)
        return sorted(names)

    def open_read(self, name: str) -> IO[bytes]:
        path = self._path(name)
        with self._errors(name):
            return path.open("rb")

    def remove(self, name: str) -> None:
        with self._errors(name):
            self._path(name).unlink(missing_ok=True)

    def size(self, name: str) -> int:
        path = self._path(name)
        with self._errors(name):
            return path.stat().st_size

    def url(self, name: str) -> str:
        return str(self._path(name))

    @contextmanager
    def _errors(self, name: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError as exc:
            raise MissingObjectError(f"{exc.filename or self.root / name}: no such file") from exc
        except PermissionError as exc:
            raise StorageConfigError(f"{exc.filename or self.root}: permission denied; "
                                     "check the archive directory's owner and mode") from exc
        except OSError as exc:
            raise StorageError(f"{exc.filename or self.root / name}: {exc.strerror or exc}") from exc


def _unless_missing(exc: OSError) -> None:
    """os.walk's error handler: a folder not there yet holds nothing; any other error is raised."""
    if not isinstance(exc, FileNotFoundError):
        raise exc


def _copy(source: Path, out: IO[bytes]) -> None:
    with source.open("rb") as src:
        shutil.copyfileobj(src, out, 4 * MiB)


class FsspecStorage(Storage):
    """An fsspec filesystem under `root` (for S3: "bucket/prefix").

    Picklable and fork-safe, for worker processes and Dask tasks: the filesystem (whose event loop
    and connections cannot cross a fork) is made again in each process that uses it.
    """

    def __init__(self, url_root: str, options: StorageOptions, fs_options: Mapping[str, Any]) -> None:
        self.url_root = url_root
        self.options = options
        self._fs_options = dict(fs_options)
        self._fs: Any = None
        self._pid = 0
        self.root = str(self.fs._strip_protocol(url_root)).rstrip("/")  # "bucket/prefix"
        self._s3 = "s3" in _protocols(self.fs)

    @property
    def fs(self) -> Any:
        if self._fs is None or self._pid != os.getpid():
            import fsspec

            try:
                self._fs, _ = fsspec.core.url_to_fs(self.url_root, skip_instance_cache=True, **self._fs_options)
            except (ImportError, ValueError, TypeError) as exc:
                raise StorageConfigError(f"{self.url_root}: cannot open this store: {exc}") from exc
            self._pid = os.getpid()
        return self._fs

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fs": None, "_pid": 0}

    def __repr__(self) -> str:
        return f"FsspecStorage({self.url_root!r})"

    def _path(self, name: str) -> str:
        if "\\" in name:  # some stores and clients take it for a separator (a plain character on POSIX)
            raise StorageError(f"invalid storage name {name!r}: no backslash in object names")
        return f"{self.root}/{check_name(name)}"

    def staging_path(self, name: str) -> Path:
        # local disk on the worker: the object store cannot take appends (see the module's doc)
        spool = self.options.spool_dir or Path(tempfile.gettempdir()) / "archiver-spool"
        path = spool / self.root / check_name(name)
        with LocalStorage(spool)._errors(name):
            path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(path.name + OPEN_SUFFIX)

    def publish(self, local_file: Path, name: str) -> str:
        path = self._path(name)
        size = local_file.stat().st_size
        kwargs: dict[str, Any] = {}
        if self._s3:
            # Not Content-Encoding: gzip, ever: clients would then inflate .warc.gz bodies and
            # offsets into them would be wrong.
            kwargs = {"chunksize": self.options.part_size, "max_concurrency": self.options.max_concurrency,
                      "ContentType": "application/octet-stream"}
        with self._errors(name):
            self.fs.put_file(str(local_file), path, **kwargs)
            stored = self.fs.size(path)
        if stored != size:
            raise StorageError(f"{self.url(name)}: {stored} bytes stored after publishing {size}; publish it again")
        local_file.unlink()
        return self.url(name)

    def exists(self, name: str) -> bool:
        # not fs.exists: s3fs answers False for a missing bucket or a refused connection too
        try:
            with self._errors(name):
                return bool(self.fs.info(self._path(name))["type"] == "file")
        except MissingObjectError:
            return False

    def list(self, prefix: str = "", suffix: str = "") -> list[str]:
        _check_prefix(prefix)
        folder = prefix.rpartition("/")[0]
        start = f"{self.root}/{folder}" if folder else self.root
        with self._errors(prefix):
            found = self.fs.find(start, detail=False)
        names = (path[len(self.root) + 1:] for path in found if path.startswith(self.root + "/"))
        return sorted(n for n in names if _listed(n, prefix, suffix))

    def open_read(self, name: str) -> IO[bytes]:
        with self._errors(name):
            handle = self.fs.open(self._path(name), "rb", block_size=self.options.read_block_size,
                                  cache_type="readahead")
        return io.BufferedReader(_Translating(handle, self, name), buffer_size=64 * 1024)

    def read_bytes(self, name: str) -> bytes:
        # One GET: s3fs would otherwise fetch a large object as concurrent ranges without If-Match,
        # and an object re-published meanwhile could come back as a mix of two versions.
        kwargs = {"max_concurrency": 1} if self._s3 else {}
        with self._errors(name):
            return bytes(self.fs.cat_file(self._path(name), **kwargs))

    def remove(self, name: str) -> None:
        try:
            with self._errors(name):
                self.fs.rm_file(self._path(name))
        except MissingObjectError:
            pass

    def size(self, name: str) -> int:
        with self._errors(name):
            info = self.fs.info(self._path(name))
        if info["type"] != "file":
            raise MissingObjectError(f"{self.url(name)}: no such object")
        return int(info["size"])

    def url(self, name: str) -> str:
        return f"{self.url_root}/{check_name(name)}"

    @contextmanager
    def _errors(self, name: str) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            if not _from_store(exc):
                raise  # a bug, not the store's answer: keep its own type and traceback
            self._raise(exc, name)

    def _raise(self, exc: Exception, name: str) -> NoReturn:
        where = f"{self.url_root}/{name}"
        endpoint = (self.options.endpoint() or "AWS S3") if self._s3 else self.url_root
        code = _error_code(exc)
        bucket = self.root.split("/", 1)[0]
        if code == "NoSuchBucket":
            raise StorageConfigError(
                f"{where}: no bucket {bucket!r} at {endpoint}; create it (aws s3 mb s3://{bucket}, "
                f"mc mb ALIAS/{bucket}) or correct the storage URL") from exc
        if code in _DENIED or (code is None and isinstance(exc, PermissionError)):
            raise StorageConfigError(
                f"{where}: access denied by {endpoint} ({code or exc}); check the key and secret (storage options, "
                "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and that they may read, write and list the bucket"
            ) from exc
        if code in ("PreconditionFailed", "412"):
            raise StorageError(f"{where}: the object was replaced while it was being read; open it again") from exc
        if code in ("NoSuchKey", "404") or (code is None and isinstance(exc, FileNotFoundError)):
            raise MissingObjectError(f"{where}: no such object") from exc
        kind = type(exc).__name__
        if kind in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
            raise StorageConfigError(
                f"{where}: no credentials for {endpoint}: give key and secret in the storage options, set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or anonymous: true for a public bucket") from exc
        if _is_connection_error(exc):
            raise StorageError(
                f"{where}: cannot reach {endpoint} ({kind}: {exc}); check the endpoint URL and that the "
                "server is running and reachable from this machine") from exc
        raise StorageError(f"{where}: {kind}: {exc}") from exc


_DENIED = {"AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
           "AccountProblem", "InvalidToken", "RequestTimeTooSkewed", "403"}


def _error_code(exc: BaseException) -> str | None:
    """The S3 error code of `exc` or of the botocore error s3fs translated it from."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        response = getattr(seen, "response", None)
        if isinstance(response, dict) and isinstance(response.get("Error"), dict):
            code = response["Error"].get("Code")
            return str(code) if code is not None else None
        seen = seen.__cause__ or seen.__context__
    return None


def _from_store(exc: BaseException) -> bool:
    """Raised by the filesystem or the client libraries (rather than a bug in the caller)."""
    modules = {cls.__module__.split(".", 1)[0] for cls in type(exc).__mro__}
    return isinstance(exc, OSError) or bool(modules & {"botocore", "aiobotocore", "aiohttp", "s3fs", "fsspec"})


def _is_connection_error(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ConnectionError", "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                         "ClientConnectorError", "ServerDisconnectedError", "ClientOSError", "TimeoutError",
                         "FSTimeoutError", "HTTPClientError", "gaierror"})


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


class _Translating(io.RawIOBase):
    """An fsspec file whose read errors come out as StorageError (the object replaced, the store gone)."""

    def __init__(self, handle: Any, storage: FsspecStorage, name: str) -> None:
        super().__init__()
        self._handle = handle
        self._storage = storage
        self._name = name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with self._storage._errors(self._name):
            data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._handle.seek(offset, whence))

    def tell(self) -> int:
        return int(self._handle.tell())

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


def collection_storage(cfg: Config, collection: Collection) -> Storage:
    """Where a collection's WARC files (`archive/`) and fragments (`indexes/fragments/`) live: its
    own folder, or `<cfg.storage>/<name>/` on an object store."""
    if not cfg.storage:
        return LocalStorage(collection.path)
    settings = cfg.storage_settings
    if cfg.storage_endpoint:
        if settings.get("endpoint_url", cfg.storage_endpoint) != cfg.storage_endpoint:
            raise ConfigError("storage_endpoint and storage_options' endpoint_url differ: give one of them")
        settings["endpoint_url"] = cfg.storage_endpoint
    return open_storage(f"{cfg.storage.rstrip('/')}/{collection.name}", StorageOptions.from_mapping(settings))


def warc_names(storage: Storage) -> list[str]:
    """The complete WARC/ARC files in the store's archive/ (files being written end in .open)."""
    return [name.removeprefix("archive/") for name in storage.list("archive/")
            if name.endswith(WARC_SUFFIXES) and "/" not in name.removeprefix("archive/")]


def warc_sizes(storage: Storage) -> dict[str, int]:
    """Name -> size of the complete WARC/ARC files in the collection's storage (a folder or a bucket)."""
    return {name: storage.size(f"archive/{name}") for name in warc_names(storage)}
