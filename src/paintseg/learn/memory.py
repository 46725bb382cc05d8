"""Keep a process that trains again and again from growing.

glibc gives each thread that allocates its own malloc arena, and keeps freed memory for
reuse. The random forest's worker threads (``paintseg/learn/forest.py``) leave small freed
blocks scattered over several arenas: a process that trained 30 times held about 8 % more
memory than after its first training, though nothing more was alive (``benchmarks/soak.py``).
With one arena the freed blocks are reused (training ran 1.5 % slower), and handing the
free pages back after each training and prediction keeps the memory flat. (The other cause,
convolution code compiled per input shape, is kept small by ``sampling.stroke_window``.)
"""

from __future__ import annotations

import ctypes
import functools
import sys

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (musl's mallopt and malloc_trim do nothing)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (an AttributeError elsewhere)
        return libc
    except (OSError, AttributeError):
        return None


def use_one_malloc_arena() -> bool:
    """Make threads that start allocating from now on share the main malloc arena (glibc
    only; elsewhere nothing happens). Call it early, before worker threads allocate.

    Returns
    -------
    bool
        Whether the setting took effect.
    """
    libc = _glibc()
    return bool(libc and libc.mallopt(M_ARENA_MAX, 1))


def release_freed_memory() -> None:
    """Hand the pages that freed memory leaves unused back to the system (glibc only)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
KEEP_FREED = 128 << 20  # freed memory kept for reuse before it goes back to the system
LARGEST_HEAP_BLOCK = 32 << 20  # blocks up to this size come from the heap, not from mmap


def reuse_large_buffers() -> bool:
    """Let freed tile buffers be reused instead of unmapped and mapped again (glibc only).

    A dask worker starts with ``MALLOC_TRIM_THRESHOLD_=65536`` (dask's default), which also
    turns off glibc's dynamic mmap threshold: every buffer over 128 KiB is then mapped and
    unmapped, and tiled prediction ran 1.5x slower. `release_freed_memory` still hands the
    pages back after each prediction.

    Returns
    -------
    bool
        Whether the settings took effect.
    """
    libc = _glibc()
    return bool(libc and libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREED)
                and libc.mallopt(M_MMAP_THRESHOLD, LARGEST_HEAP_BLOCK))
