"""Peak extra resident memory of a call, C++ allocations included (Linux)."""


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def peak_extra_memory(fn):
    """Bytes by which fn() raised the process's resident set above where it started, or None
    where the kernel cannot reset the peak (writing 5 to /proc/self/clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        start = _status_kib("VmRSS")
    except OSError:
        return None
    fn()
    try:
        peak = _status_kib("VmHWM")
    except OSError:
        return None
    return max(0, peak - start) * 1024
