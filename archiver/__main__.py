"""`python -m archiver` and the `archiver` command.

The command's script imports only this module: worker processes (multiprocessing's spawn) import
the parent's main script again, and the whole command line (click, every subcommand's library)
would cost each worker a noticeable share of a second of CPU before its first seed; they need none of it.
"""

from __future__ import annotations


def main() -> None:
    import os

    # pyarrow imports numpy, whose OpenBLAS starts a thread per core that spins after start-up
    # (CPU in every process, more while idle); archiver does no linear algebra. Set before
    # numpy loads, and inherited by the worker processes.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from archiver.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
