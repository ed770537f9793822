"""Arrays flush against an inaccessible page, so that a kernel reading or writing even one float
past the end (or before the start) of its argument faults at once instead of reading
whatever follows in the heap."""

import ctypes
import mmap

import numpy as np

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_PAGE = mmap.PAGESIZE
_keep = []  # mappings stay alive (and guarded) for the life of the test process


def guarded(a, where="end"):
    """A copy of `a` (C-contiguous) whose data ends exactly at a PROT_NONE page (where='end') or
    starts exactly after one (where='start')."""
    a = np.ascontiguousarray(a)
    nbytes = max(a.nbytes, 1)
    data_pages = (nbytes + _PAGE - 1) // _PAGE
    total = (data_pages + 2) * _PAGE
    base = _libc.mmap(None, total, mmap.PROT_READ | mmap.PROT_WRITE,
                      mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    if base in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap failed")
    # Without the guards every test using this would pass without checking anything.
    for guard in (base, base + (data_pages + 1) * _PAGE):
        if _libc.mprotect(guard, _PAGE, 0) != 0:
            raise OSError(ctypes.get_errno(), "mprotect failed: no guard page")
    start = base + _PAGE if where == "start" else base + (data_pages + 1) * _PAGE - a.nbytes
    _keep.append(base)
    buf = (ctypes.c_char * a.nbytes).from_address(start)
    out = np.frombuffer(buf, dtype=a.dtype).reshape(a.shape)
    out[...] = a
    return out
