"""``ModelRouter``: the fallback chain, the shared circuit breaker and per-model rate limits.

The router knows nothing of HTTP: it sees a ``Model``, ``ModelRequest``s and the errors a model
raises. One router is shared by every parallel node of a run, so what one caller learns (a model
is overloaded, a model is rate limited) protects all the others at once.

Rules for one ``request(request, fallbacks)``:

- The chain is the request's model then at most 3 ``fallbacks``; every call starts at the
  primary again (a fallback lasts one call), unless the primary's breaker is open.
- 429: the model is paused for every caller for ``retry_after`` (else back-off
  ``min(0.5 * 2**n, 8)`` s); the same model is retried up to ``retries`` times, then the chain
  moves on. A ``retry_after`` above ``max_retry_after`` is not waited for when another model is
  left in the chain: the chain moves on at once (and alone, the wait is capped).
- 529, 5xx, timeouts, connection errors: the chain moves on at once. The model's breaker opens
  (for ``cooldown`` s, or the provider's ``retry_after`` up to ``max_retry_after``) only after
  ``failure_threshold`` consecutive failures, so a flaky endpoint is not mistaken for a dead one.
  When it has cooled down it is half-open: one caller probes it, the others keep skipping it;
  the probe's success closes it, its failure opens it again. A model whose breaker is open is
  skipped (recorded as ``skipped``). When every model is open, the router waits for the earliest
  to close (at most ``max_wait`` s in total) instead of failing.
- The last model of a node's own turn (the only one, without fallbacks) is retried in place after
  a 5xx, 529 or timeout, with jittered back-off, up to ``retries_alone`` times (an advisor
  consult is not: its failure lets the executor carry on): a flaky endpoint slows
  a run instead of failing it. A refused connection is retried only ``retries_refused`` times:
  nothing is listening, and waiting a minute would only hide that.
- Any other ``ModelError`` (400, 401, ...) fails at once: another model would not fix it.

Retries live here, not in the SDK: ``AnthropicModel`` keeps the SDK's ``max_retries=0`` so every
attempt is visible, recorded, and counted once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from asyncio_throttle.throttler import Throttler

from flowgraph.clock import Clock, SystemClock, backoff
from flowgraph.errors import (
    ConfigError,
    EndpointUnreachableError,
    ModelTimeoutError,
    TransientModelError,
)
from flowgraph.models.endpoints import endpoint_of, prefix_of
from flowgraph.models.seam import Model, ModelRequest, ModelResponse

__all__ = [
    "MAX_FALLBACKS",
    "Attempt",
    "ModelLimits",
    "ModelRouter",
    "RouterEvent",
    "Served",
    "describe_error",
]

MAX_FALLBACKS = 3

Outcome = Literal["served", "failed", "rate_limited", "skipped"]
EventKind = Literal["fallback", "breaker_opened", "model_paused", "waiting", "substituted"]

_STATUS_WORDS = {
    429: "rate limited",
    500: "server error",
    502: "bad gateway",
    503: "unavailable",
    504: "gateway timeout",
    529: "overloaded",
}


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """Client-side limits for one model, shared by every caller of the router.

    Attributes:
        requests_per_period: at most this many requests start per ``period`` (None: no cap).
        period: the rate window in seconds.
        max_concurrent: at most this many requests in flight at once (None: no cap).
    """

    requests_per_period: int | None = None
    period: float = 60.0
    max_concurrent: int | None = None

    def __post_init__(self) -> None:
        for name in ("requests_per_period", "max_concurrent"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"ModelLimits.{name}={value} must be >= 1 or None for no cap")
        if self.period <= 0:
            raise ConfigError(f"ModelLimits.period={self.period} must be > 0 seconds")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One step of the chain: a model tried (or skipped) and what happened."""

    model: str
    outcome: Outcome
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Served:
    """A response and how the router got it.

    Attributes:
        response: the model's response.
        served_by: the model that answered: the response's ``model`` (with the endpoint
            prefix of the model asked), which is what is recorded and priced.
        attempts: every try and skip, in order.
        fallbacks_taken: how many times the chain moved past a model (0: the primary served).
        requested: the model of the chain that was asked (differs from ``served_by`` when the
            endpoint answered with another model).
    """

    response: ModelResponse
    served_by: str
    attempts: tuple[Attempt, ...]
    fallbacks_taken: int
    requested: str = ""

    @property
    def endpoint(self) -> str:
        """The name of the endpoint that served (``"default"`` without a prefix)."""
        return endpoint_of(self.served_by)

    @property
    def substituted(self) -> bool:
        """Whether the endpoint answered with another model than the one asked."""
        return bool(self.requested) and self.requested != self.served_by


@dataclass(frozen=True, slots=True)
class RouterEvent:
    """Something callers and operators should know about.

    Attributes:
        kind: ``fallback`` (moving to ``to_model``), ``breaker_opened``, ``model_paused``
            (after a 429), ``waiting`` (every model's breaker is open) or ``substituted`` (the
            endpoint answered ``model``'s request with ``to_model``).
        model: the model concerned.
        reason: why, e.g. ``overloaded (529)``.
        seconds: how long the breaker, pause or wait lasts.
        to_model: the next model, for ``fallback``.
        node: the graph node whose request caused it.
    """

    kind: EventKind
    model: str
    reason: str = ""
    seconds: float = 0.0
    to_model: str = ""
    node: str = ""


def describe_error(err: TransientModelError) -> str:
    """A short reason such as ``overloaded (529)``, ``timeout`` or ``connection error``."""
    if isinstance(err, ModelTimeoutError):
        return "timeout"
    if err.status is None:
        return "connection error"
    return f"{_STATUS_WORDS.get(err.status, 'error')} ({err.status})"


def _answered(asked: str, replied: str) -> str:
    """The model that really answered, written like ``asked`` (with its endpoint prefix).

    A reply naming a dated snapshot of the model asked (``claude-x`` -> ``claude-x-20261001``) or
    no model at all is the model asked."""
    prefix = prefix_of(asked)
    bare = asked.removeprefix(prefix)
    if not replied or replied == bare or replied.startswith(bare + "-"):
        return asked
    return prefix + replied


def _refused(err: TransientModelError) -> bool:
    """Nothing answered at that address."""
    return isinstance(err, EndpointUnreachableError)


class ModelRouter:
    """Sends requests through a fallback chain with a shared circuit breaker and limits.

    Args:
        client: the model that performs requests for any model id (e.g. ``AnthropicModel``).
        limits: per model id, rate and concurrency caps.
        cooldown: seconds a breaker stays open after an overload, 5xx or connection error.
        retries: retries of the same model after a 429 before moving on.
        clock: time source for back-off, pauses and cool-downs.
        on_event: called with each ``RouterEvent``.
        max_wait: the longest total wait, per request, for a breaker to close when all are open.
        max_retry_after: the longest ``retry-after`` obeyed; beyond it the chain moves on.
        failure_threshold: consecutive failures of a model that open its breaker.
        retries_alone: in-place retries of the chain's last model after a 5xx, 529 or timeout.
        retries_refused: in-place retries of the chain's last model after a refused connection.
        seed: seeds the back-off jitter (tests).
    """

    def __init__(
        self,
        client: Model,
        *,
        limits: Mapping[str, ModelLimits] | None = None,
        cooldown: float = 10.0,
        retries: int = 2,
        clock: Clock | None = None,
        on_event: Callable[[RouterEvent], None] | None = None,
        max_wait: float = 120.0,
        max_retry_after: float = 60.0,
        failure_threshold: int = 3,
        retries_alone: int = 8,
        retries_refused: int = 2,
        seed: int | None = None,
    ) -> None:
        numbers = (retries, cooldown, max_wait, max_retry_after, retries_alone, retries_refused)
        if min(numbers) < 0 or failure_threshold < 1:
            raise ConfigError(
                "ModelRouter needs retries, cooldown, max_wait, max_retry_after, retries_alone "
                "and retries_refused >= 0 and failure_threshold >= 1"
            )
        self._client = client
        self._limits = dict(limits or {})
        self.cooldown = cooldown
        self.retries = retries
        self.max_wait = max_wait
        self.max_retry_after = max_retry_after
        self.failure_threshold = failure_threshold
        self.retries_alone = retries_alone
        self.retries_refused = retries_refused
        self._rng = random.Random(seed)
        self._failures: dict[str, int] = {}
        self._probing: set[str] = set()
        self._clock: Clock = clock or SystemClock()
        self._on_event = on_event
        self._open_until: dict[str, float] = {}
        self._paused_until: dict[str, float] = {}
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._throttlers: dict[str, Throttler] = {}

    def breaker_open(self, model: str) -> bool:
        """Whether ``model`` is skipped right now: its breaker is open, or half-open with a
        probe already in flight."""
        if model in self._probing:
            return True
        return self._open_until.get(model, float("-inf")) > self._clock.monotonic()

    def paused_for(self, model: str) -> float:
        """Seconds ``model`` stays paused after a 429 (0 when not paused)."""
        return max(0.0, self._paused_until.get(model, 0.0) - self._clock.monotonic())

    async def request(self, request: ModelRequest, fallbacks: Sequence[str] = ()) -> Served:
        """Send ``request`` to its model, falling back along ``fallbacks`` on transient errors.

        Raises:
            ConfigError: more than ``MAX_FALLBACKS`` fallbacks.
            ModelError: a non-transient failure (bad request, credentials), at once.
            TransientModelError: every model in the chain failed, or stayed open too long.
        """
        if len(fallbacks) > MAX_FALLBACKS:
            raise ConfigError(
                f"node {request.node!r} lists {len(fallbacks)} fallbacks for {request.model}; "
                f"at most {MAX_FALLBACKS} are allowed, drop the rest"
            )
        chain = list(dict.fromkeys([request.model, *fallbacks]))
        attempts: list[Attempt] = []
        waited = 0.0
        while True:
            served, last_error = await self._pass(chain, request, attempts)
            if served is not None:
                return served
            if last_error is not None and (
                _refused(last_error) or not all(self.breaker_open(m) for m in chain)
            ):
                raise self._exhausted(request, attempts, last_error)
            # Every model was skipped: wait for the first breaker to close, within max_wait
            # (a half-open model whose probe is in flight is looked at again shortly).
            now = self._clock.monotonic()
            pause = max(0.05, min(self._open_until.get(m, now) for m in chain) - now)
            if waited + pause > self.max_wait:
                raise self._exhausted(request, attempts, None)
            self._emit(
                RouterEvent("waiting", chain[0], "all circuits open", pause, node=request.node)
            )
            await self._clock.sleep(pause)
            waited += pause

    async def _pass(
        self, chain: list[str], request: ModelRequest, attempts: list[Attempt]
    ) -> tuple[Served | None, TransientModelError | None]:
        """Walk the chain once: the served response, or the last error (None if all skipped)."""
        last_error: TransientModelError | None = None
        moves = 0
        for index, model in enumerate(chain):
            if self.breaker_open(model):
                left = self._open_until.get(model, 0.0) - self._clock.monotonic()
                why = f"circuit open ({left:.1f}s left)" if left > 0 else "circuit half-open"
                attempts.append(Attempt(model, "skipped", why))
            else:
                # Patience is for a node's own turns; an advisor consult that fails lets the
                # executor carry on at once instead.
                last = index + 1 == len(chain) and request.purpose == "executor"
                result = await self._try_model(model, request, attempts, last)
                if isinstance(result, ModelResponse):
                    answered = _answered(model, result.model)
                    if answered != model:
                        self._emit(RouterEvent("substituted", model, to_model=answered,
                                               node=request.node))  # fmt: skip
                    return Served(result, answered, tuple(attempts), moves, model), None
                last_error = result
            if index + 1 < len(chain):
                moves += 1
                reason = attempts[-1].reason
                self._emit(
                    RouterEvent(
                        "fallback", model, reason, to_model=chain[index + 1], node=request.node
                    )
                )
        return None, last_error

    async def _try_model(
        self, model: str, request: ModelRequest, attempts: list[Attempt], last: bool
    ) -> ModelResponse | TransientModelError:
        call = request if request.model == model else dataclasses.replace(request, model=model)
        limited = failed = 0
        while True:
            pause = self.paused_for(model)
            if pause > 0:
                await self._clock.sleep(min(pause, self.max_retry_after))
            try:
                response = await self._probe(model, call)
            except TransientModelError as err:
                reason = describe_error(err)
                if err.status == 429:
                    attempts.append(Attempt(model, "rate_limited", reason))
                    wait = err.retry_after if err.retry_after is not None else backoff(limited + 1)
                    too_long = wait > self.max_retry_after
                    self._pause(model, min(wait, self.max_retry_after), reason, request.node)
                    limited += 1
                    if limited > self.retries or (too_long and not last):
                        return err
                    continue
                attempts.append(Attempt(model, "failed", reason))
                failed += 1
                if self._failed(model, err, reason, request.node) or not last:
                    return err
                allowed = self.retries_refused if _refused(err) else self.retries_alone
                if failed > allowed:
                    return err
                await self._clock.sleep(backoff(failed) * (0.5 + self._rng.random() / 2))
                continue
            attempts.append(Attempt(model, "served"))
            return response

    async def _probe(self, model: str, call: ModelRequest) -> ModelResponse:
        """One call; a model past its threshold is half-open and this call is its only probe."""
        half_open = self._failures.get(model, 0) >= self.failure_threshold
        if half_open:
            self._probing.add(model)
        try:
            async with self._limited(model):
                response = await self._client.request(call)
        finally:
            if half_open:
                self._probing.discard(model)
        # A success closes the breaker; one from a call sent before the breaker opened is
        # old news and leaves it open.
        if half_open or self._open_until.get(model, float("-inf")) <= self._clock.monotonic():
            self._failures.pop(model, None)
            self._open_until.pop(model, None)
        return response

    def _pause(self, model: str, seconds: float, reason: str, node: str) -> None:
        until = self._clock.monotonic() + seconds
        self._paused_until[model] = max(self._paused_until.get(model, 0.0), until)
        self._emit(RouterEvent("model_paused", model, reason, seconds, node=node))

    def _failed(self, model: str, err: TransientModelError, reason: str, node: str) -> bool:
        """Count a failure; open the breaker on a run of them. True when it opened."""
        count = self._failures[model] = self._failures.get(model, 0) + 1
        if count < self.failure_threshold:
            return False
        self._open(model, err, reason, node)
        return True

    def _open(self, model: str, err: TransientModelError, reason: str, node: str) -> None:
        seconds = self.cooldown
        if err.retry_after is not None:
            seconds = min(err.retry_after, self.max_retry_after)
        until = self._clock.monotonic() + seconds
        self._open_until[model] = max(self._open_until.get(model, float("-inf")), until)
        self._emit(RouterEvent("breaker_opened", model, reason, seconds, node=node))

    @contextlib.asynccontextmanager
    async def _limited(self, model: str) -> AsyncIterator[None]:
        limits = self._limits.get(model)
        if limits is None:
            yield
            return
        async with contextlib.AsyncExitStack() as stack:
            if limits.max_concurrent is not None:
                semaphore = self._semaphores.setdefault(
                    model, asyncio.Semaphore(limits.max_concurrent)
                )
                await stack.enter_async_context(semaphore)
            if limits.requests_per_period is not None:
                throttler = self._throttlers.setdefault(
                    model, Throttler(limits.requests_per_period, limits.period)
                )
                await stack.enter_async_context(throttler)
            yield

    def _emit(self, event: RouterEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _exhausted(
        self, request: ModelRequest, attempts: list[Attempt], last: TransientModelError | None
    ) -> TransientModelError:
        tried = ", ".join(
            f"{a.model} {a.outcome}" + (f" [{a.reason}]" if a.reason else "") for a in attempts
        )
        where = f"node {request.node!r}" if request.node else "request"
        # The endpoint's own words (already one line, truncated and without secrets).
        said = f"; last error: {last}" if last is not None else ""
        kind = (
            EndpointUnreachableError
            if last is not None and _refused(last)
            else (TransientModelError)
        )
        return kind(
            f"{where}: no model could serve ({tried}){said}; retry later, raise the cool-down "
            "wait, or add fallbacks",
            status=last.status if last else None,
            provider=last.provider if last else "",
            model=request.model,
            retry_after=last.retry_after if last else None,
        )
