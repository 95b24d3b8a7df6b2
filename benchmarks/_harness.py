"""Shared benchmark harness: run each case in a fresh subprocess and measure its time and peak memory.

CPU peak memory is the high-water mark of the resident set (``ru_maxrss``) above the resident set just before the
first (warm-up) call; CUDA peak memory is ``torch.cuda.max_memory_allocated`` above the allocation before it.
Linux only (``/proc/self/statm``).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def measure(step: Callable[[], object], device, repeats: int) -> dict:
    """Warm up once, then time ``repeats`` calls of ``step``; return median/min seconds and peak MB."""
    import torch

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    base_rss = current_rss_mb()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base_cuda = torch.cuda.memory_allocated(device)
    step()
    sync()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - base_cuda) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_rss
    return {"median_s": statistics.median(times), "min_s": min(times), "peak_mb": peak}


def run_in_subprocess(script: str, args: list[str]) -> dict | None:
    """Run ``script`` with ``args`` (its worker mode) and parse the JSON on the last line of its output."""
    res = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        print(f"worker {args} failed:\n{res.stderr[-3000:]}")
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def machine_line() -> str:
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"torch {torch.__version__}, python {platform.python_version()}, {cpu}{gpu}"


def select_devices(choice: str) -> list[str]:
    """``"cpu"``, ``"cuda"`` or ``"all"`` -> the devices to run; CUDA is dropped (with a message) when absent."""
    import torch

    devices = ["cpu", "cuda"] if choice == "all" else [choice]
    if "cuda" in devices and not torch.cuda.is_available():
        devices.remove("cuda")
        print("CUDA not available: CPU only.\n")
    return devices
