"""nndex on a Ray cluster: :class:`ShardedIndex` splits the rows into shards, each an NNdex in a Ray
actor, and answers every search exactly as one index over all the rows would.

>>> import numpy as np
>>> from nndex.distributed import ShardedIndex
>>> data = np.random.rand(100_000, 64).astype(np.float32)
>>> with ShardedIndex(data, shards=4) as index:        # a local Ray cluster unless one is running
...     ids, sims = index.search(data[:8], k=10)       # global ids: row positions in data

Needs Ray (``pip install 'nndex[distributed]'``); nothing else in nndex imports this module.
"""

try:
    import ray  # noqa: F401
except ImportError:  # pragma: no cover - the extra is missing
    raise ImportError("nndex.distributed needs Ray: pip install 'nndex[distributed]'") from None

from nndex.distributed._fanout import ShardUnavailableError
from nndex.distributed._results import Coverage, PartialResult
from nndex.distributed._sharded import ShardedIndex

__all__ = ["Coverage", "PartialResult", "ShardUnavailableError", "ShardedIndex"]
