"""This process's memory and CPU time, shared by torch_infer.py and torch_train.py (Linux: /proc and getrusage)."""
import resource
import sys


def eprint(*a):
    print(*a, file=sys.stderr, flush=True)


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def cpu_seconds():
    """This process's CPU time, so the caller can tell our load from other work on the machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
