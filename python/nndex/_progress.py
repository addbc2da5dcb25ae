"""tqdm progress bars for long loads and builds (stderr; tqdm is imported only when one is shown)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator, Optional


def _disable(enabled: Optional[bool]) -> Optional[bool]:
    # tqdm's `disable`: True hides, False always shows, None shows only when stderr is a terminal.
    return None if enabled is None else not enabled


def bar_factory(enabled: Optional[bool] = True) -> Callable[[int, str], Any]:
    """Returns ``make(total_rows, description)`` -> a tqdm bar on stderr.

    ``enabled``: True always shows the bars (an explicit request, e.g. in a notebook), None shows them
    only when stderr is a terminal (the command line, so that logs stay clean), False hides them."""

    def make(total: int, desc: str) -> Any:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="rows", unit_scale=True, leave=False,
                    disable=_disable(enabled), dynamic_ncols=True)

    return make


@contextlib.contextmanager
def spinner(desc: str, enabled: Optional[bool] = True, interval: float = 0.25) -> Iterator[None]:
    """Shows elapsed time while the body runs (for native work that reports no progress).

    ``enabled`` as for :func:`bar_factory`. The body runs on the calling thread (so Ctrl-C still
    interrupts the native build); a daemon thread refreshes the bar."""
    if enabled is False:
        yield
        return
    from tqdm import tqdm

    bar = tqdm(total=None, desc=desc, bar_format="{desc}: {elapsed}", leave=False, disable=_disable(enabled))
    done = threading.Event()

    def tick() -> None:
        while not done.wait(interval):
            bar.refresh()

    ticker = threading.Thread(target=tick, name="nndex-progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
        bar.close()
