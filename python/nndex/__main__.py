"""``python -m nndex``: the nndex command line (see nndex.cli)."""

import sys

from nndex.cli import main

sys.exit(main())
