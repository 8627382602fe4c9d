"""NumPy's transparent-huge-page advice turned off around a bulk write.

NumPy advises the kernel to back every array of 4 MiB or more with huge pages
(``madvise(MADV_HUGEPAGE)``).  A write grows the store's in-memory matrices (buffers that
double, tables laid out again after training), and each first touch of such an array then
faults in and zeroes a whole 2 MiB page.  Measured at 1M x 128 on the benchmark machine, the
build's buffer growth took 2.1-2.4 s with the advice and 0.6-0.7 s without it, and the whole
build 3-4 s less.  Scans over small pages measured no slower (radius queries at 1M over
the mapped snapshot, 4 KiB pages: 0.627 ms; over a copy on huge pages: 0.633 ms).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator


def _advice_switch() -> Callable[[bool], bool] | None:
    """NumPy's switch (it returns the previous setting), where this NumPy has one."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):  # NumPy 2, then 1.x
        try:
            switch = getattr(importlib.import_module(module), "_set_madvise_hugepage", None)
        except ImportError:
            continue
        if callable(switch):
            return switch  # type: ignore[no-any-return]
    return None


_SWITCH = _advice_switch()


@contextlib.contextmanager
def small_pages() -> Iterator[None]:
    """NumPy's huge-page advice off inside the block, back on after it if it was on before
    (as :func:`~ebr.stores.local.gc_pause.paused_gc`: nested or concurrent blocks leave it
    on once the one that turned it off ends).  A no-op where NumPy has no such switch."""
    if _SWITCH is None:
        yield
        return
    was = _SWITCH(False)
    try:
        yield
    finally:
        if was:
            _SWITCH(True)
