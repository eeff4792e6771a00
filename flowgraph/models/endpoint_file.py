"""Endpoints declared outside Python: a small TOML (or JSON) file, and its record in a ledger.

``flowgraph run FILE --endpoints endpoints.toml`` (or ``FLOWGRAPH_ENDPOINTS=endpoints.toml``)
reads one; ``EndpointFile.from_file`` is the same from code. The file names each endpoint's
URL, the **names** of the environment variables that hold its credentials (a secret is never
written in it, nor in the ledger that records it), what it is trusted with, and its prices::

    [endpoints.gateway]
    base_url = "https://openrouter.ai/api"
    api_key_env = ""                    # send no x-api-key
    auth_token_env = "OPENROUTER_TOKEN"  # the variable's NAME
    advisor = "emulated"                # auto | native | emulated
    server_fallbacks = false
    stream = true
    timeout = 600

    [endpoints.gateway.prices]
    "openai/gpt-5.5" = { input = 1.25, output = 10.0 }   # USD per million tokens

    [endpoints.default]                 # optional: where models without a prefix go
    base_url = "https://api.anthropic.com"

A run records the file's content (``to_record``) in its ledger settings, so ``flowgraph
resume`` talks to the same endpoints; the credentials are read from the environment again.
Prices are kept per endpoint and checked when laid over a run's price table (the ``money``
layer, above this one), where ``gateway``'s are keyed ``gateway:openai/gpt-5.5``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from flowgraph.datafiles import read_settings_file
from flowgraph.errors import ConfigError
from flowgraph.models.endpoints import DEFAULT_ENDPOINT, Endpoint, Endpoints

__all__ = ["ENDPOINTS_ENV", "EndpointFile"]

ENDPOINTS_ENV = "FLOWGRAPH_ENDPOINTS"
_KEYS = tuple(f.name for f in fields(Endpoint))
_TYPES: dict[str, tuple[type, ...]] = {
    "base_url": (str,),
    "api_key_env": (str,),
    "auth_token_env": (str,),
    "advisor": (str,),
    "server_fallbacks": (bool,),
    "stream": (bool,),
    "timeout": (int, float),
}
# Keys a user may reach for that would put a secret in the file: say what to write instead.
_SECRETS = {"api_key": "api_key_env", "auth_token": "auth_token_env", "token": "auth_token_env",
            "key": "api_key_env"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class EndpointFile:
    """Named endpoints and their prices, as an endpoints file declares them.

    Attributes:
        endpoints: name -> ``Endpoint`` (``"default"``: the endpoint of unprefixed models).
        prices: endpoint name -> model id (bare, as the endpoint knows it) -> price fields
            (``input``, ``output``... USD per million tokens).
    """

    endpoints: Mapping[str, Endpoint]
    prices: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | Path) -> EndpointFile:
        """Read an endpoints file (``.toml``, or ``.json`` of the same shape).

        Raises:
            ConfigError: the file is missing, unreadable, or declares something wrong.
        """
        path = Path(path)
        data = read_settings_file(path, "endpoints file", default_format="toml", fix="fix it")
        table = data.get("endpoints") if isinstance(data, dict) else None
        if not isinstance(table, dict) or not table:
            raise ConfigError(
                f"endpoints file {path} declares no endpoints; write one table per endpoint, "
                'e.g. [endpoints.gateway] with base_url = "..." and auth_token_env = "NAME"'
            )
        return cls.from_record(table, where=f"endpoints file {path}")

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, where: str = "ledger") -> EndpointFile:
        """Read endpoints back from ``to_record``'s form (or a file's ``endpoints`` table)."""
        endpoints: dict[str, Endpoint] = {}
        prices: dict[str, Mapping[str, Mapping[str, float]]] = {}
        for name, spec in record.items():
            here = f"{where}, endpoint {name!r}"
            if not isinstance(spec, dict):
                raise ConfigError(f"{here}: expected a table of settings, got {spec!r}")
            settings = {k: v for k, v in spec.items() if k != "prices"}
            endpoints[name] = _endpoint(settings, here)
            if "prices" in spec:
                prices[name] = _prices(spec["prices"], here)
        try:
            Endpoints.check_names(endpoints, default_allowed=True)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
        return cls(endpoints, prices)

    def to_record(self) -> dict[str, Any]:
        """The endpoints as JSON data, for a ledger: URLs and variable names, never a secret."""
        record: dict[str, Any] = {}
        for name, endpoint in self.endpoints.items():
            spec = {k: getattr(endpoint, k) for k in _KEYS if getattr(endpoint, k) is not None}
            if name in self.prices:
                spec["prices"] = {m: dict(p) for m, p in self.prices[name].items()}
            record[name] = spec
        return record

    def priced(self) -> dict[str, Mapping[str, float]]:
        """The prices keyed as a run's price table keys them: ``"gateway:openai/gpt-5.5"``
        (bare ids for the default endpoint)."""
        return {
            (model if name == DEFAULT_ENDPOINT else f"{name}:{model}"): price
            for name, table in self.prices.items()
            for model, price in table.items()
        }

    def client(self) -> Endpoints:
        """The ``Endpoints`` client, with each endpoint's credentials read now."""
        named = {n: e for n, e in self.endpoints.items() if n != DEFAULT_ENDPOINT}
        return Endpoints(named, default=self.endpoints.get(DEFAULT_ENDPOINT))


def _endpoint(spec: dict[str, Any], where: str) -> Endpoint:
    for key in spec:
        if key in _SECRETS:
            # Never repeat the value: it may be the secret itself.
            raise ConfigError(
                f"{where}: {key} would put a secret in the file; write the NAME of the "
                f'environment variable that holds it instead: {_SECRETS[key]} = "MY_VAR"'
            )
        if key not in _TYPES:
            raise ConfigError(
                f"{where}: unknown setting {key!r}; settings are: {', '.join(_KEYS)}, prices"
            )
        kinds = _TYPES[key]
        value = spec[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ConfigError(
                f"{where}: {key} must be {' or '.join(k.__name__ for k in kinds)}, "
                f"got {type(value).__name__}"
            )
    try:
        return Endpoint(**spec)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _prices(table: Any, where: str) -> dict[str, Mapping[str, float]]:
    if not isinstance(table, dict) or not all(isinstance(p, dict) for p in table.values()):
        raise ConfigError(
            f"{where}: prices must be a table of model id -> "
            "{ input = ..., output = ... } (USD per million tokens)"
        )
    return {str(model): dict(price) for model, price in table.items()}
