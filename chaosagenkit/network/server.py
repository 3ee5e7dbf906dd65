"""The fault proxy daemon: the proxies it runs, the run's seed, and what the API may change.

``ProxyServer`` holds every proxy and applies the API's requests to them.
Its rule: a request is checked completely before anything changes, and a
request that fails changes nothing (a listener that cannot bind is found
out before the old one is closed; populate creates all or none). The only
exception is ``/reset``, a clean-up: it does all it can and reports what
it could not (a proxy whose address was taken while it was down).

Every fault expires by itself, so it never outlives the chaos run that
injected it even if that run died: a toxic is removed by the daemon
``duration_s`` seconds after it was added (our extension of Toxiproxy's
toxic JSON; Toxiproxy ignores it), and a proxy disabled with ``{"enabled":
false}`` is enabled again after ``duration_s``. Without ``duration_s`` (a
Toxiproxy client never sends it) the daemon's default TTL applies
(``--default-ttl``, ``limits.DEFAULT_TTL_S``); at most ``limits.MAX_TTL_S``.
A proxy has at most one re-enable timer: every disable replaces it, and
enabling, deleting, replacing (populate) or resetting the proxy cancels it.

Errors are domain errors (``ProxyServerError`` and its subclasses, and
``ConfigurationError`` for a bad value); ``chaosagenkit.network.api`` maps
them to HTTP statuses in one table.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from dataclasses import dataclass
from typing import Any

from chaosagenkit import __version__
from chaosagenkit.api import is_loopback
from chaosagenkit.exceptions import ChaosAgenkitError, ConfigurationError
from chaosagenkit.faults.toxics import build_toxic
from chaosagenkit.limits import DEFAULT_TTL_S
from chaosagenkit.network.address import Address, TcpAddress, UnixAddress, parse_address
from chaosagenkit.network.proxy import STREAMS, Proxy, ToxicSpec
from chaosagenkit.validation import random_seed, require_probability, require_seed, require_ttl

__all__ = [
    "IMPLEMENTATION",
    "AddressInUse",
    "BadRequestBody",
    "CannotListen",
    "InvalidStream",
    "MissingField",
    "ProxyExists",
    "ProxyNotFound",
    "ProxyRequest",
    "ProxyServer",
    "ProxyServerError",
    "ResetIncomplete",
    "ToxicExists",
    "ToxicNotFound",
]

logger = logging.getLogger("chaosagenkit.proxy")

#: ``GET /version`` names the implementation, so clients can tell us from a real Toxiproxy.
IMPLEMENTATION = "chaosagenkit"


class ProxyServerError(ChaosAgenkitError):
    """A request the proxy server refuses; the message is the whole one-line answer."""


class BadRequestBody(ProxyServerError):
    """The body is not the JSON shape the route takes (Toxiproxy's ErrBadRequestBody)."""


class MissingField(ProxyServerError):
    """A required field is absent (Toxiproxy's ErrMissingField)."""


class ProxyNotFound(ProxyServerError):
    """No proxy of that name (Toxiproxy's ErrProxyNotFound)."""


class ProxyExists(ProxyServerError):
    """A proxy of that name exists already (Toxiproxy's ErrProxyAlreadyExists)."""


class ToxicNotFound(ProxyServerError):
    """No toxic of that name on the proxy (Toxiproxy's ErrToxicNotFound)."""


class ToxicExists(ProxyServerError):
    """A toxic of that name exists already on the proxy (Toxiproxy's ErrToxicAlreadyExists)."""


class InvalidStream(ProxyServerError):
    """A stream other than upstream or downstream (Toxiproxy's ErrInvalidStream)."""


class AddressInUse(ProxyServerError):
    """A listen address another socket holds."""


class CannotListen(ProxyServerError):
    """A listen address that cannot be bound for another reason (not local, no permission)."""


class ResetIncomplete(ProxyServerError):
    """``/reset`` did all it could, but some proxy could not listen again."""


@dataclass(frozen=True)
class ProxyRequest:
    """A checked proxy definition from the API (a TCP ``listen`` may have port 0)."""

    name: str
    listen: Address
    upstream: Address
    enabled: bool


class ProxyServer:
    """Every proxy of one daemon, and the seed their toxics draw from."""

    def __init__(
        self,
        *,
        seed: int | None = None,
        token: str | None = None,
        default_ttl_s: float = DEFAULT_TTL_S,
    ) -> None:
        self.seed = random_seed() if seed is None else require_seed(seed)
        self.token = token
        self.default_ttl_s = require_ttl(default_ttl_s, "default_ttl_s")
        self.proxies: dict[str, Proxy] = {}
        self._lock = asyncio.Lock()  # one change at a time: checks and effects stay consistent
        self._expiries: set[asyncio.TimerHandle] = set()
        self._enablers: dict[str, asyncio.TimerHandle] = {}  # proxy name -> its re-enable timer
        self._tasks: set[asyncio.Task] = set()

    def version_json(self) -> dict[str, Any]:
        return {"version": __version__, "implementation": IMPLEMENTATION}

    # -- seed ---------------------------------------------------------------------
    def set_seed(self, body: Any) -> dict[str, int]:
        self.seed = require_seed(body.get("seed") if isinstance(body, dict) else None)
        for proxy in self.proxies.values():
            proxy.restart_numbering()
        return {"seed": self.seed}

    # -- proxies ------------------------------------------------------------------
    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ProxyNotFound(f"proxy not found: {name}")
        return proxy

    def check_proxy(self, body: Any, *, where: str = "") -> ProxyRequest:
        """Check a proxy definition (Toxiproxy's JSON) without changing anything."""
        if not isinstance(body, dict):
            raise BadRequestBody(f"bad request body{where}: a proxy must be a JSON object")
        name = _check_name(body.get("name"), f"name{where}")
        upstream_text = body.get("upstream")
        if not isinstance(upstream_text, str) or not upstream_text.strip():
            raise MissingField(f"missing required field: upstream{where} (HOST:PORT or unix:/PATH)")
        upstream = parse_address(upstream_text, f"upstream{where}")
        if isinstance(upstream, TcpAddress) and upstream.port == 0:
            raise ConfigurationError(f"upstream{where}", "port must be between 1 and 65535, got 0")
        listen = self._check_listen(body.get("listen", "127.0.0.1:0"), f"listen{where}")
        enabled = body.get("enabled")
        if enabled is None:  # absent or null: enabled, as Toxiproxy
            enabled = True
        if not isinstance(enabled, bool):
            raise ConfigurationError(f"enabled{where}", f"must be true or false, got {enabled!r}")
        return ProxyRequest(name, listen, upstream, enabled)

    async def create_proxy(self, body: Any) -> Proxy:
        request = self.check_proxy(body)
        async with self._lock:
            if request.name in self.proxies:
                raise ProxyExists(f"proxy already exists: {request.name}")
            proxy = self._new_proxy(request)
            if request.enabled:
                await _bind(proxy)
            self.proxies[proxy.name] = proxy
            logger.info("proxy %s: %s -> %s", proxy.name, proxy.listen, proxy.upstream)
            return proxy

    async def update_proxy(self, name: str, body: Any) -> Proxy:
        """Toxiproxy's ProxyUpdate: listen/upstream/enabled, each optional.

        Ours: a proxy disabled with ``"enabled": false`` is enabled again after
        ``duration_s`` seconds (the default TTL when absent).
        """
        if not isinstance(body, dict):
            raise BadRequestBody("bad request body: expected a JSON object")
        async with self._lock:
            proxy = self.get(name)
            merged = {
                "name": name,
                "listen": body.get("listen", proxy.listen),
                "upstream": body.get("upstream", proxy.upstream),
                "enabled": proxy.enabled if body.get("enabled") is None else body["enabled"],
            }
            if "name" in body and body["name"] != name:
                raise ConfigurationError("name", "cannot be changed; delete and create the proxy")
            request = self.check_proxy(merged)
            if body.get("duration_s") is not None and body.get("enabled") is not False:
                raise ConfigurationError(
                    "duration_s", 'applies only with "enabled": false (how long the proxy stays down)'
                )
            duration = require_ttl(body.get("duration_s"), default=self.default_ttl_s)
            before = (proxy.listen_address, proxy.upstream_address)
            if (request.listen, request.upstream) != before:
                await _guard(str(request.listen), proxy.move(request.listen, request.upstream))
            if request.enabled and not proxy.enabled:
                try:
                    await _bind(proxy)
                except ProxyServerError:
                    await proxy.move(*before)  # a disabled proxy: addresses only, nothing to bind
                    raise
            elif not request.enabled and proxy.enabled:
                await proxy.stop()
            if body.get("enabled") is True:
                self._cancel_enable(name)
            elif body.get("enabled") is False:
                self._cancel_enable(name)
                self._enable_later(proxy, duration)
            return proxy

    async def delete_proxy(self, name: str) -> None:
        async with self._lock:
            proxy = self.get(name)
            del self.proxies[name]
            self._cancel_enable(name)
            await proxy.stop()

    async def populate(self, body: Any) -> list[Proxy]:
        """Create or replace the proxies in ``body``: all of them, or none."""
        if not isinstance(body, list):
            raise BadRequestBody("bad request body: populate takes a JSON array of proxies")
        requests = [self.check_proxy(item, where=f" (proxy {i + 1})") for i, item in enumerate(body)]
        names = [request.name for request in requests]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigurationError("name", f"appears more than once: {', '.join(duplicates)}")
        async with self._lock:
            plan = [
                (request, self.proxies.get(request.name))
                for request in requests
                if request.name not in self.proxies or not _same(self.proxies[request.name], request)
            ]
            fresh: dict[str, Proxy] = {}
            try:  # bind every new address first: a failure here changes nothing
                for request, current in plan:
                    proxy = fresh[request.name] = self._new_proxy(request)
                    if current is not None and _listen_matches(current, request):
                        proxy.listen_address = current.listen_address  # freed below, then bound again
                    elif request.enabled:
                        await _bind(proxy)
            except BaseException:
                for proxy in fresh.values():
                    await proxy.stop()
                raise
            for request, current in plan:  # replace, as Toxiproxy: the old toxics go
                proxy = fresh[request.name]
                self.proxies[request.name] = proxy
                if current is not None:
                    self._cancel_enable(request.name)
                    await current.stop()
                if request.enabled and not proxy.enabled:
                    await _bind(proxy)  # its own address, just released
            return [self.proxies[name] for name in names]

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic; ``ResetIncomplete`` names what could not be."""
        problems = []
        async with self._lock:
            for name in list(self._enablers):
                self._cancel_enable(name)
            for proxy in self.proxies.values():
                for toxic_name in list(proxy.toxics):
                    proxy.remove_toxic(toxic_name)
                if not proxy.enabled:
                    try:
                        await proxy.start()
                    except OSError as e:
                        problems.append(
                            f"{proxy.name} cannot listen on {proxy.listen} again: {e.strerror or e}"
                        )
        if problems:
            raise ResetIncomplete("reset done, but " + "; ".join(problems))

    async def close(self) -> None:
        for handle in [*self._expiries, *self._enablers.values()]:
            handle.cancel()
        self._expiries.clear()
        self._enablers.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        async with self._lock:
            for proxy in list(self.proxies.values()):
                await proxy.stop()
            self.proxies.clear()

    def _enable_later(self, proxy: Proxy, duration_s: float) -> None:
        """Enable ``proxy`` again after ``duration_s`` unless its timer is replaced or cancelled first."""
        loop = asyncio.get_running_loop()

        def fire() -> None:
            task = loop.create_task(self._enable_expired(proxy, handle, duration_s))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        handle = loop.call_later(duration_s, fire)
        self._enablers[proxy.name] = handle

    async def _enable_expired(self, proxy: Proxy, handle: asyncio.TimerHandle, duration_s: float) -> None:
        async with self._lock:
            if self._enablers.get(proxy.name) is not handle:
                return  # replaced or cancelled while this task waited for the lock
            del self._enablers[proxy.name]
            if self.proxies.get(proxy.name) is not proxy or proxy.enabled:
                return
            try:
                await proxy.start()
            except OSError as e:
                logger.warning(
                    "proxy %s: cannot listen on %s again after %g s down: %s",
                    proxy.name,
                    proxy.listen,
                    duration_s,
                    e.strerror or e,
                )
                return
            logger.info("proxy %s: enabled again after %g s down", proxy.name, duration_s)

    def _cancel_enable(self, name: str) -> None:
        handle = self._enablers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def enable_due(self, name: str) -> float | None:
        """When (event loop time) proxy ``name`` is enabled again by its timer; None without one."""
        handle = self._enablers.get(name)
        return None if handle is None else handle.when()

    # -- toxics -------------------------------------------------------------------
    async def create_toxic(self, proxy_name: str, body: Any) -> ToxicSpec:
        """Toxiproxy's toxic JSON; ours: ``duration_s`` (the default TTL when absent)."""
        async with self._lock:
            proxy = self.get(proxy_name)
            spec = _check_toxic(body, self.default_ttl_s)
            if spec.name in proxy.toxics:
                raise ToxicExists(f"toxic already exists: {spec.name} (on proxy {proxy_name})")
            proxy.add_toxic(spec)
            self._expire_later(proxy, spec)
            logger.info("proxy %s: toxic %s added", proxy_name, spec.name)
            return spec

    def _expire_later(self, proxy: Proxy, spec: ToxicSpec) -> None:
        def expire() -> None:
            self._expiries.discard(handle)
            if self.proxies.get(proxy.name) is proxy and proxy.toxics.get(spec.name) is spec:
                proxy.remove_toxic(spec.name)
                logger.info("proxy %s: toxic %s expired after %g s", proxy.name, spec.name, spec.duration_s)

        handle = asyncio.get_running_loop().call_later(spec.duration_s, expire)
        self._expiries.add(handle)

    def get_toxic(self, proxy_name: str, toxic_name: str) -> ToxicSpec:
        proxy = self.get(proxy_name)
        spec = proxy.toxics.get(toxic_name)
        if spec is None:
            raise ToxicNotFound(f"toxic not found: {toxic_name} (on proxy {proxy_name})")
        return spec

    async def update_toxic(self, proxy_name: str, toxic_name: str, body: Any) -> ToxicSpec:
        """Toxiproxy's ToxicUpdate: attributes merged onto the current ones, and toxicity."""
        if not isinstance(body, dict):
            raise BadRequestBody("bad request body: expected a JSON object")
        async with self._lock:
            spec = self.get_toxic(proxy_name, toxic_name)
            for fixed in ("name", "type", "stream"):
                if fixed in body and body[fixed] != getattr(spec, fixed):
                    raise ConfigurationError(fixed, "cannot be changed; delete and re-create the toxic")
            toxic = build_toxic(spec.type, body.get("attributes"), base=spec.toxic)
            toxicity = require_probability(body.get("toxicity", spec.toxicity), "toxicity")
            return self.proxies[proxy_name].update_toxic(toxic_name, toxic, toxicity)

    async def delete_toxic(self, proxy_name: str, toxic_name: str) -> None:
        async with self._lock:
            self.get_toxic(proxy_name, toxic_name)
            self.proxies[proxy_name].remove_toxic(toxic_name)
            logger.info("proxy %s: toxic %s removed", proxy_name, toxic_name)

    # -- helpers ------------------------------------------------------------------
    def _new_proxy(self, request: ProxyRequest) -> Proxy:
        proxy = Proxy(request.name, request.listen, request.upstream, lambda: self.seed)
        proxy.enabled = False
        return proxy

    def _check_listen(self, value: Any, field: str) -> Address:
        if not isinstance(value, str):
            raise ConfigurationError(field, f"must be HOST:PORT or unix:/PATH, got {value!r}")
        address = parse_address(value, field)
        if isinstance(address, TcpAddress) and not is_loopback(address.host) and not self.token:
            refusal = ConfigurationError(
                field,
                f"is {address.host}, which is not a loopback address: start the proxy with --token "
                "to accept connections from other hosts",
            )
            # some clients show an API error only at DEBUG (chaostoolkit-toxiproxy's default
            # listen_host is 0.0.0.0): say it where the daemon's operator looks too
            logger.warning("refused a proxy: %s", refusal)
            raise refusal
        return address


def _check_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MissingField(f"missing required field: {field} (a non-empty string)")
    if "/" in value or value != value.strip():
        raise ConfigurationError(field, f"must not contain '/' or surrounding spaces, got {value!r}")
    return value


def _check_toxic(body: Any, default_ttl_s: float) -> ToxicSpec:
    """A toxic from Toxiproxy's JSON: defaults stream downstream, toxicity 1, name TYPE_STREAM.

    Ours: ``duration_s``, ``default_ttl_s`` when absent.
    """
    if not isinstance(body, dict):
        raise BadRequestBody("bad request body: a toxic must be a JSON object")
    type_name = body.get("type")
    if not isinstance(type_name, str) or not type_name:
        raise MissingField("missing required field: type")
    stream = body.get("stream")
    if stream is None:  # absent or null
        stream = "downstream"
    # as Toxiproxy: any case ("Upstream"), but not empty
    if not isinstance(stream, str) or stream.lower() not in STREAMS:
        raise InvalidStream(f"stream was invalid, can be either upstream or downstream, got {stream!r}")
    stream = stream.lower()
    toxicity = require_probability(body.get("toxicity", 1.0), "toxicity")
    name = body.get("name") or f"{type_name}_{stream}"
    _check_name(name, "name")
    toxic = build_toxic(type_name, body.get("attributes"))
    duration = require_ttl(body.get("duration_s"), default=default_ttl_s)
    return ToxicSpec(name, type_name, stream, toxicity, toxic, duration_s=duration)


async def _bind(proxy: Proxy) -> None:
    await _guard(proxy.listen, proxy.start())


async def _guard(listen: str, change) -> None:
    """Await a change that may bind a listener; a bind failure is the request's problem."""
    try:
        await change
    except OSError as e:
        error = AddressInUse if e.errno == errno.EADDRINUSE else CannotListen
        raise error(f"cannot listen on {listen}: {e.strerror or e}") from e


def _same(proxy: Proxy, request: ProxyRequest) -> bool:
    return (
        _listen_matches(proxy, request)
        and request.upstream == proxy.upstream_address
        and request.enabled == proxy.enabled
    )


def _listen_matches(proxy: Proxy, request: ProxyRequest) -> bool:
    wanted, bound = request.listen, proxy.listen_address
    if isinstance(wanted, UnixAddress) or isinstance(bound, UnixAddress):
        return wanted == bound
    return wanted.host == bound.host and wanted.port in (0, bound.port)
