"""pywb templates that archiver ships (in templates/ beside this module), installed into a root's
templates/, which pywb reads before its own."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from archiver._fs import atomic_write

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
        with atomic_write(target, durable=False) as out:  # never a half-written template for pywb to load
            out.write(content)
        written.append(f"{TEMPLATES_DIR}/{name}")
    return written
