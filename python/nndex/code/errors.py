"""The one exception type of ``nndex code``: its message is shown to the user as a single line."""

from __future__ import annotations


class CodeSearchError(Exception):
    """A problem the user can act on (no index, unreachable server, missing extra, ...).

    The command line prints ``str(error)`` on one line of stderr and exits with a non-zero status.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(" ".join(str(message).split()))  # always one line
        self.exit_code = exit_code
