"""pyarrow, imported on first use (it is large) and set to allocate with the system allocator.

pyarrow's default pool (mimalloc) keeps memory it has freed: a capture writing and reading a
Parquet fragment per batch peaked far higher with it than with the system allocator, at the same
speed (bench/README.md, "Measurements behind the code").
"""

from __future__ import annotations

import os
import sys
from typing import Any


def pyarrow() -> Any:
    chosen = "ARROW_DEFAULT_MEMORY_POOL" in os.environ  # a user's choice stands
    if not chosen and "pyarrow" not in sys.modules:
        # read by pyarrow when it loads; set_memory_pool() later is not enough: measured, mimalloc
        # still took the parquet reader's and writer's allocations
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    import pyarrow as pa

    if not chosen and pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())  # imported by someone else first: the next best
    return pa
