"""Memory of a running process, from /proc/PID/status (Linux): the benchmarks' one reader."""

from __future__ import annotations


def status_kb(pid: int, key: str) -> int:
    """A line of /proc/PID/status (VmRSS, VmHWM, RssAnon) in KiB; 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss(pid: int) -> int:
    """The peak resident memory of process ``pid`` so far (VmHWM), in bytes."""
    return status_kb(pid, "VmHWM") * 1024
