"""``AnthropicModel``: the ``Model`` seam on the official ``anthropic`` SDK (``beta.messages``).

This is the only flowgraph module that imports the SDK, and it does so lazily, when the first
request builds the client: importing ``anthropic`` takes over a second and ``import flowgraph``
must stay fast.

Retries: the SDK's own retries are **off by default** (``max_retries=0``). Retrying, pausing a
rate-limited model and falling back to another model are decisions of
``flowgraph.router.ModelRouter``, which sees every attempt, shares a circuit breaker across
parallel nodes and records each attempt in the ledger. An SDK retry loop behind its back would
hide attempts, double the waiting (SDK back-off, then router back-off) and keep hammering an
overloaded model that the router would have skipped. Pass ``max_retries`` > 0 only when using
the model without a router.

Errors map onto flowgraph's tree: 429, 5xx, 529, connection errors, timeouts, a dropped or
malformed stream and an SSE ``error`` event (overloaded_error / api_error) become
``TransientModelError`` (with ``retry_after`` read from ``retry-after-ms`` / ``retry-after``);
400, 401, 403, 404, 413 become ``ModelError`` with a one-line message. The API key is never
logged, put in a message, or kept anywhere but the SDK client and a closure that builds it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flowgraph.errors import (
    EndpointUnreachableError,
    ModelError,
    ModelTimeoutError,
    TransientModelError,
)
from flowgraph.models.seam import ModelRequest, ModelResponse, Usage

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

__all__ = ["AnthropicModel"]

PROVIDER = "anthropic"
DEFAULT_BASE_URL = "https://api.anthropic.com"
# Seconds to open a TCP connection: an endpoint that does not answer that fast is unreachable,
# and must not hold a node for the whole request timeout.
CONNECT_TIMEOUT = 5.0
# Anything that looks like a credential is cut out of error text before it is kept anywhere.
_SECRET = re.compile(
    r"(sk-[A-Za-z0-9_\-]{6,}|(?i:bearer)\s+[A-Za-z0-9._\-]{6,}|"
    r"(?i:(?:api[_-]?key|token|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,})"
)

# Stream-level error types, with the HTTP status that means the same thing, so the router can
# treat an `event: error` exactly like the status it stands for.
_STREAM_ERROR_STATUS = {"overloaded_error": 529, "api_error": 500, "rate_limit_error": 429}
_TRANSIENT_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}
_DESCRIBE = {
    429: "rate limited",
    500: "failing (500 api_error)",
    502: "unreachable (502)",
    503: "unavailable (503)",
    504: "timing out (504)",
    529: "overloaded (529)",
}


class AnthropicModel:
    """A ``Model`` that calls the Anthropic Messages API (or any compatible endpoint).

    Args:
        api_key: the key; None reads ``ANTHROPIC_API_KEY``.
        auth_token: a bearer token instead of a key; None reads ``ANTHROPIC_AUTH_TOKEN``.
        base_url: the endpoint; None reads ``ANTHROPIC_BASE_URL`` or uses the public API.
        stream: stream responses (SSE) and assemble the final message; False for plain JSON.
        max_retries: SDK-level retries; keep 0 when a ``ModelRouter`` decides retries.
        timeout: seconds per request.
        default_headers: extra headers on every request.
    """

    provider = PROVIDER
    # Anthropic's endpoint runs the advisor server tool; a compatible gateway that refuses it
    # is detected by its 400 and the run switches to the emulated advisor.
    supports_advisor_tool = True

    def __init__(
        self,
        api_key: str | None = None,
        auth_token: str | None = None,
        base_url: str | None = None,
        *,
        stream: bool = True,
        max_retries: int = 0,
        timeout: float = 600.0,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        options: dict[str, Any] = {"max_retries": max_retries}
        # Only pass what was given: the SDK reads the environment for anything left out.
        for name, value in (
            ("api_key", api_key),
            ("auth_token", auth_token),
            ("base_url", base_url),
        ):
            if value is not None:
                options[name] = value
        if default_headers:
            options["default_headers"] = dict(default_headers)

        def build() -> AsyncAnthropic:
            import httpx2
            from anthropic import AsyncAnthropic

            _keep_snapshot_class()
            connect = min(timeout, CONNECT_TIMEOUT)
            return AsyncAnthropic(**options, timeout=httpx2.Timeout(timeout, connect=connect))

        # A closure, not an attribute: the key stays out of vars(), repr() and pickles.
        self._build = build
        self._client: AsyncAnthropic | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stream = stream
        self.base_url = base_url
        self.timeout = timeout

    @property
    def url(self) -> str:
        """Where requests go: ``base_url``, else ``ANTHROPIC_BASE_URL``, else Anthropic's API."""
        return self.base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL

    def __repr__(self) -> str:
        # Never show credentials.
        where = self.base_url or "default endpoint"
        return f"AnthropicModel({where}, stream={self.stream})"

    @property
    def client(self) -> AsyncAnthropic:
        """The SDK client, built (and the SDK imported) on first use in each event loop.

        Pooled connections belong to the loop that opened them, so a model used again under a
        new loop (two ``asyncio.run`` calls) gets a fresh client instead of dead connections.
        """
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = self._build()
            self._loop = loop
        return self._client

    async def request(self, request: ModelRequest) -> ModelResponse:
        """Send one Messages request and return the whole response.

        Raises:
            TransientModelError: overload, 5xx, rate limit, connection or stream failure.
            ModelError: the request or the credentials are wrong; retrying will not help.
        """
        kwargs = _request_kwargs(request)
        try:
            client = self.client
            if self.stream:
                async with client.beta.messages.stream(**kwargs) as stream:
                    message = await _final_message(stream, request, self.url)
            else:
                message = await client.beta.messages.create(**kwargs)
        except Exception as err:
            mapped = map_error(err, request.model, self.url)
            if mapped is None:
                raise
            raise mapped from err
        return to_response(message)

    async def count_tokens(self, request: ModelRequest) -> int:
        """The input tokens ``request`` would use (``/v1/messages/count_tokens``)."""
        kwargs = _request_kwargs(request)
        del kwargs["max_tokens"]
        try:
            result = await self.client.beta.messages.count_tokens(**kwargs)
        except Exception as err:
            mapped = map_error(err, request.model, self.url)
            if mapped is None:
                raise
            raise mapped from err
        return int(result.input_tokens)

    async def aclose(self) -> None:
        """Close the HTTP connections (the model can be used again afterwards)."""
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.close()
        self._client = None


async def _relay_text(stream: Any, on_text: Callable[[str], None]) -> None:
    """Pass a stream's text deltas on as they arrive ("" first, when content starts)."""
    started = False
    async for event in stream:
        if not started and event.type in ("content_block_start", "content_block_delta"):
            started = True
            on_text("")
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            on_text(event.delta.text)


async def _final_message(stream: Any, request: ModelRequest, url: str) -> Any:
    """The assembled message of a stream (its text deltas passed on as they come, when the
    request asks); a reply that was no stream at all (a gateway that answers a streaming
    request with plain JSON) is a transient error, not an assertion."""
    model = request.model
    try:
        if request.on_text is not None:
            await _relay_text(stream, request.on_text)
        return await stream.get_final_message()
    except AssertionError:
        kind = stream.response.headers.get("content-type", "no content-type")
        raise TransientModelError(
            f"{url} answered a streaming request for {model} without a stream ({kind}); "
            "retry, or use AnthropicModel(stream=False) for this endpoint",
            provider=PROVIDER,
            model=model,
        ) from None


def _request_kwargs(request: ModelRequest) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": list(request.messages),
    }
    if request.system:
        kwargs["system"] = request.system
    if request.tools:
        kwargs["tools"] = list(request.tools)
    if request.betas:
        kwargs["betas"] = list(request.betas)
    if request.extra:
        # extra_body carries fields the SDK has no parameter for (and wins over those it has).
        kwargs["extra_body"] = dict(request.extra)
    return kwargs


def to_response(message: Any) -> ModelResponse:
    """Turn an SDK message into a ``ModelResponse`` whose blocks are plain JSON dicts."""
    content = [
        block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in message.content
    ]
    usage = message.usage.model_dump(mode="json", by_alias=True, exclude_none=True)
    return ModelResponse(
        content=content,
        stop_reason=str(message.stop_reason or "end_turn"),
        model=str(message.model),
        usage=Usage.from_dict(usage),
        id=str(message.id),
    )


# The SDK's beta stream casts each message_start snapshot to ``ParsedBetaMessage[T]``: an
# expression evaluated at run time, so pydantic looks that parametrized class up in its cache of
# generic classes, which holds them weakly. No object of that class is ever made, so nothing
# keeps it alive and each garbage collection that finds it frees it; the next stream builds it
# again, ~1.7 ms of pydantic schema work, which the throughput benchmark caught 40-60 times in
# 600 requests. Holding it here keeps the cache hit. Only public names: a later SDK without
# them costs nothing.
_KEPT: list[Any] = []


def _keep_snapshot_class() -> None:
    if _KEPT:
        return
    try:
        from anthropic.lib.streaming import BetaAsyncMessageStream
        from anthropic.types.beta.parsed_beta_message import ParsedBetaMessage

        parameter = BetaAsyncMessageStream.__parameters__[0]  # type: ignore[attr-defined]
        _KEPT.append(ParsedBetaMessage.__class_getitem__(parameter))
    except Exception:  # an SDK whose stream is built differently: nothing to keep
        _KEPT.append(None)


def map_error(err: BaseException, model: str, url: str = "") -> ModelError | None:
    """Map an SDK or transport exception to flowgraph's tree; None for anything else (a bug)."""
    import anthropic
    import httpx2

    where = f" at {url}" if url else ""
    if isinstance(err, anthropic.APIStatusError):
        return _status_error(err, model)
    if isinstance(err, anthropic.APITimeoutError | httpx2.TimeoutException):
        return ModelTimeoutError(
            f"{model}{where} timed out ({_one_line(str(err)) or type(err).__name__}); retry "
            "later, raise the timeout, or add fallbacks",
            provider=PROVIDER,
            model=model,
        )
    if isinstance(err, anthropic.APIConnectionError | httpx2.TransportError):
        # httpx2 errors surface raw when a stream is cut after the response started.
        cause = err.__cause__ or err
        said = _one_line(str(cause)) or type(cause).__name__
        kind = (
            EndpointUnreachableError
            if isinstance(cause, httpx2.ConnectError)
            else (TransientModelError)
        )
        return kind(
            f"connection to {model}{where} failed or dropped ({said}); check that the endpoint "
            "is up (ANTHROPIC_BASE_URL or the endpoint's base_url) and the network, or add "
            "fallbacks",
            provider=PROVIDER,
            model=model,
        )
    if isinstance(err, anthropic.APIResponseValidationError | json.JSONDecodeError):
        return TransientModelError(
            f"{model} sent a malformed response; retry or add fallbacks",
            provider=PROVIDER,
            model=model,
        )
    if isinstance(err, TypeError) and "authentication method" in str(err):
        return ModelError(
            "no Anthropic credentials; set ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN), "
            "or pass api_key= to AnthropicModel",
            provider=PROVIDER,
            model=model,
        )
    return None


def _status_error(err: Any, model: str) -> ModelError:
    status = int(err.status_code)
    kind = str(err.type or "")
    detail = _one_line(str(err.api_message or err.message))
    if status == 200:
        # An `event: error` inside a stream that had already answered 200.
        status = _STREAM_ERROR_STATUS.get(kind, 0) or status
        if status == 200:
            return ModelError(
                f"{model} stream failed ({kind or 'error'}): {detail}",
                status=200,
                provider=PROVIDER,
                model=model,
            )
    if status in _TRANSIENT_STATUS or status >= 500:
        what = _DESCRIBE.get(status, f"failing ({status})")
        return TransientModelError(
            f"{model} is {what}: {detail}; retry later or add fallbacks",
            status=status,
            provider=PROVIDER,
            model=model,
            retry_after=_retry_after(err.response.headers),
        )
    return ModelError(
        _permanent_message(status, kind, detail, model),
        status=status,
        provider=PROVIDER,
        model=model,
    )


def _permanent_message(status: int, kind: str, detail: str, model: str) -> str:
    if status == 401:
        return (
            f"Anthropic rejected the credentials for {model} (401 {kind}); set ANTHROPIC_API_KEY "
            "to a valid key (or pass api_key=)"
        )
    if status == 403:
        return (
            f"the key in ANTHROPIC_API_KEY may not use {model} (403 {kind}): {detail}; "
            "use a key with access or another model"
        )
    if status == 404:
        return (
            f"model or endpoint not found for {model} (404 {kind}): {detail}; "
            "check the model id and ANTHROPIC_BASE_URL"
        )
    if status == 413:
        return (
            f"request to {model} is too large (413): {detail}; shorten the prompt or tool results"
        )
    return f"request to {model} was rejected ({status} {kind}): {detail}; fix the request"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return max(0.0, float(email.utils.mktime_tz(parsed)) - time.time())


def _one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, credentials cut out, at most ``limit`` characters."""
    line = _SECRET.sub("[redacted]", " ".join(text.split()))
    return line if len(line) <= limit else line[: limit - 3] + "..."
