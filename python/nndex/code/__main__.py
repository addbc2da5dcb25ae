"""``python -m nndex.code``: the ``nndex code`` commands (embed, search, info)."""

import sys

from nndex.code.cli import main

sys.exit(main())
