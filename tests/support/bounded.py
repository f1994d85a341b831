"""Running a piece of archiver in a child process with bounds, and reading what it cost.

Memory and CPU bombs are tested by their cost, not by their time: the child's peak RSS (VmHWM,
which the kernel keeps) is compared with a bound. The child also runs
under hard limits, far above the bound, so that a regression fails the test instead of
exhausting the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

_PRELUDE = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({address_space}, {address_space}))
resource.setrlimit(resource.RLIMIT_CPU, ({cpu}, {cpu}))
ARGS = json.loads(sys.argv[1])
def done(result):
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over an exec from the forking
    # parent (a large pytest process), while VmHWM is this program's own peak
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) // 1024
    print(json.dumps({{"result": result, "peak_mb": peak}}))
"""


@dataclass
class Outcome:
    result: Any  # what the code passed to done(...)
    peak_mb: int  # the child's peak resident memory
    returncode: int
    stderr: str


def run_bounded(code: str, args: Any = None, *, address_space_mb: int = 6000, cpu_seconds: int = 120,
                timeout: float = 300) -> Outcome:
    """Run `code` (which reads ARGS and ends with done(result)) in a fresh Python process."""
    prelude = _PRELUDE.format(address_space=address_space_mb * 1024 * 1024, cpu=cpu_seconds)
    process = subprocess.run([sys.executable, "-c", prelude + code, json.dumps(args)], capture_output=True,
                             text=True, timeout=timeout)
    lines = [line for line in process.stdout.splitlines() if line.startswith("{")]
    found = json.loads(lines[-1]) if lines else {"result": None, "peak_mb": -1}
    return Outcome(found["result"], found["peak_mb"], process.returncode, process.stderr)
