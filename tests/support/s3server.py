"""A real S3-compatible server on 127.0.0.1 for tests: moto's S3 (its server mode), in a process of its own.

The clients under test speak HTTP to it exactly as to MinIO or AWS (no client is mocked). It runs
in its own process so that it does not take the GIL from the client being measured, and so that
`enforce_auth` (moto's INITIAL_NO_AUTH_ACTION_COUNT=0, under which unknown keys are refused) can
be set for one server only. It stops when `stop()` is called or when this process dies (its stdin
closes).

Neither side reads the developer's AWS configuration: the server and the test process run with
AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE at /dev/null and AWS_EC2_METADATA_DISABLED=true,
and clients are given explicit dummy keys and a region, so botocore never looks for credentials
or a region anywhere else (the EC2 metadata service at 169.254.169.254 in particular).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from archiver.storage import StorageOptions

from .processes import stop

KEY = "testing-key"
SECRET = "testing-secret"
REGION = "us-east-1"

_SERVER = """
import logging, sys, threading
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

class OneServerHeader(MotoRequestHandler):
    # moto sends a Server header of its own, and http.server adds another: aiohttp's strict parser
    # (python -X dev, AIOHTTP_NO_EXTENSIONS) refuses such a response
    def send_response(self, code, message=None):
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True,
                     request_handler=OneServerHeader)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_port, flush=True)
sys.stdin.read()  # until the test process closes it, or dies
server.shutdown()
"""

def aws_environment(environ: MutableMapping[str, str]) -> None:
    """Remove every AWS_* setting and point botocore's config files at nothing."""
    for name in [n for n in environ if n.startswith("AWS_")]:
        del environ[name]
    environ.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                   AWS_EC2_METADATA_DISABLED="true")


@contextmanager
def isolated_aws_environment() -> Iterator[None]:
    """aws_environment() on os.environ for the duration, then the environment as it was."""
    saved = dict(os.environ)
    aws_environment(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class S3Server:
    def __init__(self, enforce_auth: bool = False) -> None:
        env = dict(os.environ)
        aws_environment(env)
        if enforce_auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
        self._process = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"moto's S3 server did not start (exit {self._process.returncode})")
        self.port = int(line)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def options(self, **changes: Any) -> StorageOptions:
        """Storage options for this server: explicit dummy keys and region, few retries, fast timeouts."""
        values: dict[str, Any] = {"endpoint_url": self.endpoint, "key": KEY, "secret": SECRET, "region": REGION,
                                  "connect_timeout": 2.0, "read_timeout": 10.0, "max_attempts": 1, **changes}
        return StorageOptions(**values)

    def client(self) -> Any:
        import boto3  # a second, independent client, to set up buckets and look behind archiver.storage

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                            region_name=REGION)

    def create_bucket(self, name: str, public_read: bool = False) -> str:
        client = self.client()
        client.create_bucket(Bucket=name, **({"ACL": "public-read"} if public_read else {}))
        return name

    def stop(self) -> None:
        if self._process.stdin and not self._process.stdin.closed:
            self._process.stdin.close()
        stop(self._process, sig=None, grace=5)  # closing its stdin is what tells it to stop
        if self._process.stdout:
            self._process.stdout.close()


def unused_port() -> int:
    """A loopback port nobody listens on (bound, then released; good enough for a refused connect)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def s3_with_bucket(bucket: str) -> Iterator[S3Server]:
    """A server with one public-read bucket, in an AWS environment that reads nothing of the machine's."""
    with isolated_aws_environment():
        server = S3Server()
        try:
            server.create_bucket(bucket, public_read=True)
            yield server
        finally:
            server.stop()
