"""Replay: pywb over the archive root, in a process of its own, with archiver's templates."""
