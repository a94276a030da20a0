"""Background sampling of system metrics: CPU, memory, and NVIDIA GPUs when NVML is present."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psutil


def _gpu_reader() -> Callable[[], dict[str, float]] | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # no NVML library or no GPU: sample CPU and memory only
        return None

    def read() -> dict[str, float]:
        out: dict[str, float] = {}
        for i, h in enumerate(handles):
            util = pynvml.nvmlDeviceGetUtilizationRates(h)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            out[f"system/gpu{i}_util_percent"] = float(util.gpu)
            out[f"system/gpu{i}_memory_percent"] = 100.0 * mem.used / max(mem.total, 1)
        return out

    return read


class SystemSampler:
    """Every ``interval_s`` calls ``emit(step, values)`` with ``system/*`` readings."""

    def __init__(self, emit: Callable[[int, dict[str, Any]], None], interval_s: float) -> None:
        self.emit = emit
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="shipyard-system", daemon=True)
        self._process = psutil.Process()

    def sample(self) -> dict[str, float]:
        """One reading of the machine and this process."""
        vm = psutil.virtual_memory()
        values = {
            "system/cpu_percent": psutil.cpu_percent(interval=None),
            "system/memory_percent": vm.percent,
            "system/process_rss_mb": self._process.memory_info().rss / 2**20,
        }
        if self._gpus is not None:
            values.update(self._gpus())
        return values

    def _loop(self) -> None:
        self._gpus = _gpu_reader()
        psutil.cpu_percent(interval=None)  # the first reading is meaningless; prime it
        step = 0
        while not self._stop.wait(self.interval_s):
            try:
                self.emit(step, self.sample())
            except Exception:  # a failed sample must never disturb training
                continue
            step += 1

    def start(self) -> None:
        """Start sampling in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
