"""The shard actors of one ShardedIndex and how the driver talks to them: starting them, their last
reported state, the log of changes each has been sent, and calls that survive restarts."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, Optional

from nndex.distributed._fanout import ShardUnavailableError, call_shards, unavailable
from nndex.distributed._shard import Shard, ShardSource

_ROW_LABEL = re.compile(r"^row (\d+)\b")


def _default_threads(shards: int) -> int:
    """Threads per shard when the user names none: a node's CPUs shared by the shards Ray spreads onto
    it, so shards on one machine do not each start a thread per core."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = [int(n.get("Resources", {}).get("CPU", 0)) for n in nodes]
    cpus = [c for c in cpus if c > 0] or [1]
    per_node = math.ceil(shards / len(cpus))
    return max(1, min(cpus) // per_node)


class ShardSet:
    """``actors[s]`` serves shard ``s``; ``logs[s]`` is every change sent to it, in order (the
    shard's version is how many it has applied); ``states[s]`` its last reported state."""

    def __init__(
        self,
        sources: Sequence[ShardSource],
        options: dict[str, Any],
        *,
        restarts: int,
        retries: int,
        actor_options: Optional[dict[str, Any]],
    ) -> None:
        import ray

        self.retries = retries
        self.sources = list(sources)
        options = dict(options)
        if options.get("threads") is None:
            options["threads"] = _default_threads(len(sources))
        # Up to 4 calls at once per shard, so searches from several driver threads run side by side
        # (a threaded actor's round trip measured 1.2-1.6 ms against a plain one's 1.25-1.3 ms here).
        settings = {"max_restarts": restarts, "max_task_retries": 0, "max_concurrency": 4,
                    "scheduling_strategy": "SPREAD"}
        settings.update(actor_options or {})
        actor_class = ray.remote(Shard).options(**settings)
        self.actors = [actor_class.remote(source.path, source.key, options) for source in self.sources]
        # A shard built from an array opens it as the first entry of its log (see _shard.py).
        self.logs: list[list[tuple[Any, ...]]] = [[] if src.path else [("open", src.rows)] for src in self.sources]
        self.states: list[dict[str, Any]] = [{} for _ in self.sources]

    def __len__(self) -> int:
        return len(self.actors)

    def wait_ready(self, row_starts: Optional[Sequence[int]] = None) -> None:
        """Waits for every shard to open its rows (no time limit: building can take long); raises the
        first shard's error, naming the shard, after stopping every actor."""
        def submit(s: int) -> Any:
            actor = self.actors[s]
            return actor.apply.remote(0, self.logs[s]) if self.logs[s] else actor.state.remote()

        answers, failures = self.call(range(len(self)), submit, None, "opening shards")
        for s in sorted(answers):
            error = answers[s].get("error")
            if error is not None:
                self.close()
                raise _shard_error(error, s, self.sources[s], None if row_starts is None else row_starts[s])
        if failures:
            self.close()
            raise unavailable(failures, math.inf, "opening shards")
        for s, state in answers.items():
            self.states[s] = state

    def call(
        self, shards: Sequence[int] | range, submit: Callable[[int], Any], timeout: Optional[float], what: str
    ) -> tuple[dict[int, Any], dict[int, BaseException | None]]:
        return call_shards(list(shards), submit, timeout=math.inf if timeout is None else timeout,
                           retries=self.retries, replay=self.replay)

    def call_all(self, shards: Sequence[int] | range, submit: Callable[[int], Any], timeout: Optional[float],
                 what: str) -> dict[int, Any]:
        """call(), raising ShardUnavailableError when a shard does not answer."""
        answers, failures = self.call(shards, submit, timeout, what)
        if failures:
            raise unavailable(failures, math.inf if timeout is None else timeout, what)
        return answers

    def replay(self, shard: int, deadline: float) -> None:
        """Sends a shard the entries of its log it has not applied (it restarted), from its version."""
        import ray

        actor, log = self.actors[shard], self.logs[shard]
        state = ray.get(actor.state.remote(), timeout=_left(deadline))
        for _ in range(self.retries + 1):
            version = state["version"]
            if version >= len(log):
                self.states[shard] = state
                return
            state = ray.get(actor.apply.remote(version, log[version:]), timeout=_left(deadline))
        raise RuntimeError(f"shard {shard} did not catch up with its log of changes")

    def apply(self, entries: dict[int, tuple[Any, ...]], timeout: Optional[float]) -> None:
        """Appends one entry to each named shard's log and waits until the shard has applied it. A
        shard that does not answer keeps the entry (it is replayed once the shard is back) and the
        error says so."""
        versions = {}
        for s, entry in entries.items():
            versions[s] = len(self.logs[s])
            self.logs[s].append(entry)
        answers, failures = self.call(
            list(entries), lambda s: self.actors[s].apply.remote(versions[s], self.logs[s][versions[s]:]), timeout,
            "changing shards")
        for s, state in answers.items():
            if state["version"] < len(self.logs[s]):  # it had restarted: bring it up to date
                self.replay(s, time.monotonic() + (math.inf if timeout is None else timeout))
            else:
                self.states[s] = state
        if failures:
            error = unavailable(failures, math.inf if timeout is None else timeout, "changing shards")
            raise ShardUnavailableError(
                f"{error} (the change is kept and applied when the shard answers again)", error.shards, error.causes)

    def close(self) -> None:
        import ray

        for actor in self.actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already gone  # noqa: BLE001
                pass
        self.actors = []


def _left(deadline: float) -> Optional[float]:
    if deadline == math.inf:
        return None
    return max(0.001, deadline - time.monotonic())


def _shard_error(error: BaseException, shard: int, source: ShardSource, row_start: Optional[int]) -> BaseException:
    """The error a shard's index raised while opening, for the driver: a row number of the caller's
    data (the shard's rows start at ``row_start`` there), or the shard and its source named."""
    message = str(error)
    if source.path is None and row_start is not None:
        match = _ROW_LABEL.match(message)
        if match:
            message = f"row {int(match.group(1)) + row_start}" + message[match.end():]
            return type(error)(message) if isinstance(error, ValueError) else error
    if isinstance(error, OSError):
        return error
    return type(error)(f"shard {shard} ({source.describe()}): {message}")
