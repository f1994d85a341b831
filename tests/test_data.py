"""The test data is what its README says it is: every file listed, each byte for byte as published."""

from __future__ import annotations

import hashlib
from pathlib import Path

DATA = Path(__file__).parent / "data"


def test_every_data_file_is_listed_and_unchanged() -> None:
    listed = {}
    for line in (DATA / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    present = {p.relative_to(DATA).as_posix() for p in DATA.rglob("*") if p.is_file()} - {"README.md", "SHA256SUMS"}
    assert present == set(listed), "files in tests/data/ and SHA256SUMS differ"
    for name, digest in listed.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, f"{name} changed"
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for folder in {name.rsplit("/", 1)[0] for name in listed}:
        assert f"`{folder}/" in readme, f"tests/data/README.md does not say where {folder}/ comes from"
