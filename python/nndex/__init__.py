"""nndex: fast exact nearest-neighbour search over in-memory embeddings.

>>> import numpy as np
>>> from nndex import NNdex
>>> index = NNdex(np.random.rand(1000, 64).astype(np.float32))
>>> indices, similarities = index.search(np.random.rand(64), k=5)
"""

from nndex._index import NNdex
from nndex._nndex import __version__

__all__ = ["NNdex", "__version__"]
