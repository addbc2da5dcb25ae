"""nndex: fast nearest-neighbour search over in-memory embeddings, exact or approximate (IVF).

>>> import numpy as np
>>> from nndex import NNdex
>>> index = NNdex(np.random.rand(1000, 64).astype(np.float32))
>>> indices, similarities = index.search(np.random.rand(64), k=5)
>>> approx = NNdex(np.random.rand(20_000, 64).astype(np.float32), approx=True)  # recall@10 >= 0.95

``NNdex.from_file`` builds from .npy/.npz/.parquet files, ``load_matrix`` reads them into arrays, and
the ``nndex`` command (``python -m nndex``) builds, searches and describes index files.
"""

from nndex._cache import CacheInfo
from nndex._gpu import gpu_devices, gpu_unavailable_reason
from nndex._index import NNdex
from nndex._io import load_matrix
from nndex._nndex import __version__

__all__ = ["CacheInfo", "NNdex", "__version__", "gpu_devices", "gpu_unavailable_reason", "load_matrix"]
