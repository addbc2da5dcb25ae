"""Sending one call to many shards and getting every answer back, through actor deaths and restarts.

Ray restarts a dead shard actor (its ``max_restarts``) and queues calls sent to it meanwhile; a call
that was running when it died fails with ``RayActorError``. Such a call is sent again, up to
``retries`` times per shard, with a short back-off, until the deadline. A shard that answers STALE
(restarted, so behind the driver's log of changes) has the missing entries replayed before the call
is sent again. What has not answered by the deadline is reported, not waited for."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from nndex.distributed._shard import STALE


class ShardUnavailableError(RuntimeError):
    """A shard did not answer: its actor stayed dead or unreachable for the call's timeout, or kept
    failing after the allowed retries. ``shards`` lists the shard numbers; ``causes`` what each
    last raised (None for a timeout)."""

    def __init__(self, message: str, shards: Sequence[int], causes: dict[int, BaseException | None]) -> None:
        super().__init__(message)
        self.shards = tuple(shards)
        self.causes = causes


def _actor_errors() -> tuple[type[BaseException], ...]:
    import ray.exceptions as rex

    errors: list[type[BaseException]] = [rex.RayActorError]
    for name in ("ActorUnavailableError", "ActorDiedError", "ObjectLostError", "OwnerDiedError"):
        if hasattr(rex, name):
            errors.append(getattr(rex, name))
    return tuple(errors)


def call_shards(
    shards: Sequence[int],
    submit: Callable[[int], Any],
    *,
    timeout: float,
    retries: int,
    replay: Callable[[int, float], None],
) -> tuple[dict[int, Any], dict[int, BaseException | None]]:
    """Runs ``submit(shard)`` (which returns an ObjectRef) for every shard; returns (answers, failures)
    where failures maps each shard that did not answer to its last error (None: the deadline passed).
    ``replay(shard, deadline)`` brings a STALE shard up to date."""
    import ray

    actor_errors = _actor_errors()
    deadline = time.monotonic() + timeout
    attempts = dict.fromkeys(shards, 0)
    pending = {submit(s): s for s in shards}
    # The common case in one ray.get (cheaper than ray.wait then ray.get); anything unusual (an error, a
    # STALE shard, the deadline) goes through the loop below, which gets the same references again.
    try:
        values = ray.get(list(pending), timeout=None if timeout == math.inf else timeout)
        if not any(isinstance(v, str) and v == STALE for v in values):
            return dict(zip(pending.values(), values)), {}
    except actor_errors + (ray.exceptions.GetTimeoutError,):
        pass
    answers: dict[int, Any] = {}
    failures: dict[int, BaseException | None] = {}
    while pending:
        remaining = max(0.0, deadline - time.monotonic())
        expired = remaining == 0.0  # collect what has arrived, send nothing again
        ready, _ = ray.wait(list(pending), num_returns=len(pending),
                            timeout=None if remaining == math.inf else remaining)
        for ref in ready:
            shard = pending.pop(ref)
            try:
                value = ray.get(ref)
            except actor_errors as exc:
                attempts[shard] += 1
                if expired or attempts[shard] > retries:
                    failures[shard] = exc
                    continue
                # The actor is being restarted: calls sent now wait in Ray's queue for it.
                time.sleep(min(0.05 * 2 ** attempts[shard], max(0.0, deadline - time.monotonic())))
                pending[submit(shard)] = shard
                continue
            if isinstance(value, str) and value == STALE:
                attempts[shard] += 1
                if expired or attempts[shard] > retries:
                    failures[shard] = RuntimeError(f"shard {shard} stayed behind the index's changes")
                    continue
                try:
                    replay(shard, deadline)
                except actor_errors + (ray.exceptions.GetTimeoutError,) as exc:
                    failures[shard] = exc
                    continue
                pending[submit(shard)] = shard
                continue
            answers[shard] = value
        if expired:
            break
    for shard in pending.values():
        failures.setdefault(shard, None)
    for shard in failures:
        answers.pop(shard, None)
    return answers, failures


def unavailable(
    failures: dict[int, BaseException | None], timeout: float, what: str, hint: str = ""
) -> ShardUnavailableError:
    """The error for shards that did not answer ``what``; ``hint`` ends the message."""
    parts = []
    for shard in sorted(failures):
        cause = failures[shard]
        if cause is None:
            parts.append(f"shard {shard} did not answer within {timeout:g} s")
        else:
            first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
            parts.append(f"shard {shard} failed: {type(cause).__name__}: {first_line}")
    message = f"{what}: " + "; ".join(parts) + hint
    return ShardUnavailableError(message, sorted(failures), failures)
