"""Named endpoints: several Anthropic-compatible APIs in one run, picked per role.

A model is written ``"<endpoint>:<model id>"`` (``"gateway:openai/gpt-5.5"``) to go to a named
endpoint; a model without a known endpoint prefix goes to the default endpoint, so every graph
written before endpoints existed keeps working. ``Endpoints`` is itself a ``Model``: it strips
the prefix, sends the request to that endpoint's model, and hands back the response as it came
(its ``model`` is what actually answered). Because the endpoint is part of the model string, a
fallback chain crosses endpoints for free, the router's breaker and limits are per endpoint and
model, and a price table may price ``"gateway:openai/gpt-5.5"`` apart from the bare id.

Credentials are read from the named environment variables when the client is built, and kept
nowhere else (``AnthropicModel`` holds them in a closure).

What each endpoint is trusted with: ``advisor`` says whether the native advisor server tool is
sent there (``"auto"``: only to Anthropic's own API, since a translating gateway runs the consult
itself and hides it; ``"native"``: the user vouches for it; ``"emulated"``: never), and
``server_fallbacks`` whether the beta ``fallbacks`` body field is (a gateway such as LiteLLM reads
it as its own fallback list).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from flowgraph.errors import ConfigError
from flowgraph.models.anthropic import DEFAULT_BASE_URL, AnthropicModel
from flowgraph.models.seam import Model, ModelRequest, ModelResponse

__all__ = [
    "DEFAULT_ENDPOINT",
    "Endpoint",
    "Endpoints",
    "endpoint_of",
    "is_anthropic_api",
    "is_endpoint_name",
    "on_endpoint",
    "prefix_of",
    "split_model",
]

DEFAULT_ENDPOINT = "default"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
AdvisorMode = Literal["auto", "native", "emulated"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One Anthropic-compatible API.

    Attributes:
        base_url: the URL; None reads ``ANTHROPIC_BASE_URL`` or uses Anthropic's API.
        api_key_env: the environment variable holding the key (empty: send no key).
        auth_token_env: the environment variable holding a bearer token instead.
        advisor: ``auto`` / ``native`` / ``emulated``: where the native advisor tool goes.
        server_fallbacks: send the beta ``fallbacks`` field (None: only to Anthropic's API).
        stream: stream responses (False for a gateway that answers streams with plain JSON).
        timeout: seconds per request.
    """

    base_url: str | None = None
    api_key_env: str = "ANTHROPIC_API_KEY"
    auth_token_env: str = ""
    advisor: AdvisorMode = "auto"
    server_fallbacks: bool | None = None
    stream: bool = True
    timeout: float = 600.0

    def __post_init__(self) -> None:
        if self.advisor not in ("auto", "native", "emulated"):
            raise ConfigError(
                f"Endpoint advisor={self.advisor!r}; use 'auto', 'native' or 'emulated'"
            )
        for name in ("api_key_env", "auth_token_env"):
            value = getattr(self, name)
            if value and not _ENV_NAME.fullmatch(value):
                # Never repeat the value: it may be the secret itself.
                raise ConfigError(
                    f"Endpoint {name} must be the NAME of an environment variable (letters, "
                    "digits, _), not the credential itself; e.g. GATEWAY_TOKEN"
                )
        if self.base_url is not None and "@" in urlsplit(self.base_url).netloc:
            raise ConfigError(
                "Endpoint base_url holds credentials (user:password@); put them in an "
                "environment variable and name it in api_key_env or auth_token_env"
            )
        if self.timeout <= 0:
            raise ConfigError(f"Endpoint timeout must be a positive number of seconds, got "
                              f"{self.timeout}")  # fmt: skip

    def build(self) -> AnthropicModel:
        """The SDK model for this endpoint, with credentials read from the environment now."""
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        token = os.environ.get(self.auth_token_env) if self.auth_token_env else None
        if not key and not token:
            names = " or ".join(n for n in (self.api_key_env, self.auth_token_env) if n)
            raise ConfigError(
                f"no credentials for {self.base_url or DEFAULT_BASE_URL}; "
                f"set {names or 'api_key_env or auth_token_env'}"
            )
        # A gateway with a token wants no x-api-key at all (ANTHROPIC_API_KEY="").
        return AnthropicModel(
            key or "" if not token else None,
            auth_token=token or None,
            base_url=self.base_url,
            stream=self.stream,
            timeout=self.timeout,
        )


def is_anthropic_api(base_url: str | None) -> bool:
    """Whether ``base_url`` (None: the environment's) is Anthropic's own API."""
    url = base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL
    return url.rstrip("/").removesuffix("/v1") == DEFAULT_BASE_URL


def is_endpoint_name(name: str) -> bool:
    """A usable endpoint name: a non-empty word with no ``:``, ``/`` or ``.``."""
    return bool(name) and not any(c in name for c in ":/.") and not name.isspace()


def prefix_of(model: str) -> str:
    """``"gateway:"`` for ``"gateway:openai/gpt-5.5"``; ``""`` for a model without a prefix."""
    name, sep, rest = model.partition(":")
    return name + sep if sep and rest and is_endpoint_name(name) else ""


def endpoint_of(model: str) -> str:
    """The endpoint name written in ``model`` (``DEFAULT_ENDPOINT`` without a prefix)."""
    return prefix_of(model)[:-1] or DEFAULT_ENDPOINT


def on_endpoint(endpoint: str, model: str) -> str:
    """``model`` sent to ``endpoint`` unless it names an endpoint of its own."""
    return model if prefix_of(model) else f"{endpoint}:{model}"


def split_model(model: str, names: Mapping[str, object]) -> tuple[str, str]:
    """``("gateway", "openai/gpt-5.5")`` for ``"gateway:openai/gpt-5.5"`` when ``gateway`` is in
    ``names`` (or is ``"default"``); ``(DEFAULT_ENDPOINT, model)`` otherwise (ids may contain
    ``:`` themselves)."""
    prefix = prefix_of(model)
    if prefix and (prefix[:-1] in names or prefix[:-1] == DEFAULT_ENDPOINT):
        return prefix[:-1], model[len(prefix) :]
    return DEFAULT_ENDPOINT, model


def _bare_model(tool: dict[str, Any], names: Mapping[str, object]) -> dict[str, Any]:
    model = tool.get("model")
    if "type" not in tool or not isinstance(model, str):
        return tool
    return {**tool, "model": split_model(model, names)[1]}


class Endpoints:
    """A ``Model`` that sends each request to the endpoint its model names.

    Args:
        endpoints: name -> an ``Endpoint`` (built into an ``AnthropicModel`` now) or any ``Model``.
        default: the ``Endpoint`` or ``Model`` for models without a prefix (None: today's
            endpoint, ``AnthropicModel()`` from ``ANTHROPIC_*``, built on first use).
    """

    def __init__(
        self,
        endpoints: Mapping[str, Endpoint | Model],
        default: Endpoint | Model | None = None,
    ) -> None:
        self.check_names(endpoints)
        self._specs: dict[str, Endpoint | None] = {}
        self._models: dict[str, Model] = {}
        for name, value in {DEFAULT_ENDPOINT: default, **endpoints}.items():
            if value is None:
                self._specs[name] = None
            elif isinstance(value, Endpoint):
                self._specs[name] = value
                try:
                    self._models[name] = value.build()
                except ConfigError as err:
                    raise ConfigError(f"endpoint {name!r}: {err}") from None
            else:
                self._specs[name] = None
                self._models[name] = value

    @staticmethod
    def check_names(endpoints: Mapping[str, object], *, default_allowed: bool = False) -> None:
        """Raise ``ConfigError`` for a name a model could not be prefixed with."""
        for name in endpoints:
            if name == DEFAULT_ENDPOINT and default_allowed:
                continue
            if not is_endpoint_name(name) or name == DEFAULT_ENDPOINT:
                raise ConfigError(
                    f"endpoint name {name!r} is not usable; use a short word such as 'gateway' "
                    f"(no ':', '/', '.', and not {DEFAULT_ENDPOINT!r})"
                )

    @property
    def names(self) -> tuple[str, ...]:
        """The endpoints' names, the default first."""
        return tuple(self._specs)

    def model_for(self, endpoint: str) -> Model:
        """The model serving ``endpoint``."""
        model = self._models.get(endpoint)
        if model is None:
            if endpoint != DEFAULT_ENDPOINT:
                raise ConfigError(
                    f"unknown endpoint {endpoint!r}; endpoints are: {', '.join(self.names)}"
                )
            model = self._models[endpoint] = AnthropicModel()
        return model

    def _trusted(self, model: str, field: str) -> bool:
        endpoint, _ = split_model(model, self._specs)
        spec = self._specs.get(endpoint)
        served = self._models.get(endpoint)
        if spec is None:
            # A Model given as is: trust what it says of itself.
            if field == "advisor":
                return bool(getattr(served, "supports_advisor_tool", True))
            return bool(getattr(served, "supports_server_fallbacks", True))
        if field == "advisor":
            if spec.advisor != "auto":
                return spec.advisor == "native"
            return is_anthropic_api(spec.base_url)
        if spec.server_fallbacks is not None:
            return spec.server_fallbacks
        return is_anthropic_api(spec.base_url)

    def supports_advisor(self, model: str) -> bool:
        """Whether the native advisor tool may be sent with ``model``'s requests."""
        return self._trusted(model, "advisor")

    def supports_server_fallbacks(self, model: str) -> bool:
        """Whether the beta ``fallbacks`` body field may be sent with ``model``'s requests."""
        return self._trusted(model, "fallbacks")

    async def request(self, request: ModelRequest) -> ModelResponse:
        """Send ``request`` to the endpoint its model names, under the bare model id."""
        endpoint, model = split_model(request.model, self._specs)
        call = request if model == request.model else replace(request, model=model)
        if "fallbacks" in call.extra and not self.supports_server_fallbacks(request.model):
            call = replace(call, extra={k: v for k, v in call.extra.items() if k != "fallbacks"})
        if any("model" in t and "type" in t for t in call.tools):
            # A server tool's model (the native advisor's) is the endpoint's bare id too.
            tools = [_bare_model(t, self._specs) for t in call.tools]
            call = replace(call, tools=tools)
        return await self.model_for(endpoint).request(call)

    async def aclose(self) -> None:
        """Close every endpoint's connections."""
        for model in self._models.values():
            close = getattr(model, "aclose", None)
            if close is not None:
                await close()
