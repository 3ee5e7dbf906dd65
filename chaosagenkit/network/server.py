"""The fault proxy daemon: the proxies it runs, the run's seed, and what the API may change.

``ProxyServer`` holds every proxy and applies the API's requests to them.
Its rule: a request is checked completely before anything changes, and a
request that fails changes nothing (a listener that cannot bind is found
out before the old one is closed; populate creates all or none). The only
exception is ``/reset``, a clean-up: it does all it can and reports what
it could not (a proxy whose address was taken while it was down).

A toxic created with ``duration_s`` (our extension of Toxiproxy's toxic
JSON; Toxiproxy ignores it) is removed by the daemon itself when that time
has passed, so a fault expires even if the chaos run that injected it died.
Likewise a proxy disabled with ``{"enabled": false, "duration_s": N}`` is
enabled again by the daemon after N seconds. A proxy has at most one such
timer: every disable replaces it (a disable without ``duration_s`` leaves
none), and enabling, deleting, replacing (populate) or resetting the proxy
cancels it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from chaosagenkit import __version__
from chaosagenkit.api import ApiError, is_loopback
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.faults.toxics import build_toxic
from chaosagenkit.faults.toxics.base import MAX_DURATION_MS, shown
from chaosagenkit.network.address import Address, TcpAddress, UnixAddress, parse_address
from chaosagenkit.network.proxy import STREAMS, Proxy, ToxicSpec

__all__ = ["IMPLEMENTATION", "ProxyRequest", "ProxyServer"]

logger = logging.getLogger("chaosagenkit.proxy")

#: ``GET /version`` names the implementation, so clients can tell us from a real Toxiproxy.
IMPLEMENTATION = "chaosagenkit"


@dataclass(frozen=True)
class ProxyRequest:
    """A checked proxy definition from the API (a TCP ``listen`` may have port 0)."""

    name: str
    listen: Address
    upstream: Address
    enabled: bool


class ProxyServer:
    """Every proxy of one daemon, and the seed their toxics draw from."""

    def __init__(self, *, seed: int | None = None, token: str | None = None) -> None:
        self.seed = secrets.randbelow(2**31) if seed is None else seed
        self.token = token
        self.proxies: dict[str, Proxy] = {}
        self._lock = asyncio.Lock()  # one change at a time: checks and effects stay consistent
        self._expiries: set[asyncio.TimerHandle] = set()
        self._enablers: dict[str, asyncio.TimerHandle] = {}  # proxy name -> its re-enable timer
        self._tasks: set[asyncio.Task] = set()

    def version_json(self) -> dict[str, Any]:
        return {"version": __version__, "implementation": IMPLEMENTATION}

    # -- seed ---------------------------------------------------------------------
    def set_seed(self, body: Any) -> dict[str, int]:
        value = body.get("seed") if isinstance(body, dict) else None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
            raise ConfigurationError("seed", f"must be an integer >= 0 and < 2**64, got {shown(value)}")
        self.seed = value
        for proxy in self.proxies.values():
            proxy.restart_numbering()
        return {"seed": self.seed}

    # -- proxies ------------------------------------------------------------------
    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(404, f"proxy not found: {name}")
        return proxy

    def check_proxy(self, body: Any, *, where: str = "") -> ProxyRequest:
        """Check a proxy definition (Toxiproxy's JSON) without changing anything."""
        if not isinstance(body, dict):
            raise ApiError(400, f"bad request body{where}: a proxy must be a JSON object")
        name = _check_name(body.get("name"), f"name{where}")
        upstream_text = body.get("upstream")
        if not isinstance(upstream_text, str) or not upstream_text.strip():
            raise ApiError(400, f"missing required field: upstream{where} (HOST:PORT or unix:/PATH)")
        upstream = parse_address(upstream_text, f"upstream{where}")
        if isinstance(upstream, TcpAddress) and upstream.port == 0:
            raise ConfigurationError(f"upstream{where}", "port must be between 1 and 65535, got 0")
        listen = self._check_listen(body.get("listen", "127.0.0.1:0"), f"listen{where}")
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigurationError(f"enabled{where}", f"must be true or false, got {enabled!r}")
        return ProxyRequest(name, listen, upstream, enabled)

    async def create_proxy(self, body: Any) -> Proxy:
        request = self.check_proxy(body)
        async with self._lock:
            if request.name in self.proxies:
                raise ApiError(409, f"proxy already exists: {request.name}")
            proxy = self._new_proxy(request)
            if request.enabled:
                await _bind(proxy)
            self.proxies[proxy.name] = proxy
            logger.info("proxy %s: %s -> %s", proxy.name, proxy.listen, proxy.upstream)
            return proxy

    async def update_proxy(self, name: str, body: Any) -> Proxy:
        """Toxiproxy's ProxyUpdate: listen/upstream/enabled, each optional.

        Ours: ``duration_s`` with ``"enabled": false`` enables the proxy again
        after that many seconds.
        """
        if not isinstance(body, dict):
            raise ApiError(400, "bad request body: expected a JSON object")
        async with self._lock:
            proxy = self.get(name)
            merged = {
                "name": name,
                "listen": body.get("listen", proxy.listen),
                "upstream": body.get("upstream", proxy.upstream),
                "enabled": body.get("enabled", proxy.enabled),
            }
            if "name" in body and body["name"] != name:
                raise ConfigurationError("name", "cannot be changed; delete and create the proxy")
            request = self.check_proxy(merged)
            duration = _check_duration(body.get("duration_s"))
            if duration is not None and body.get("enabled") is not False:
                raise ConfigurationError(
                    "duration_s", 'applies only with "enabled": false (how long the proxy stays down)'
                )
            before = (proxy.listen_address, proxy.upstream_address)
            if (request.listen, request.upstream) != before:
                await _guard(str(request.listen), proxy.move(request.listen, request.upstream))
            if request.enabled and not proxy.enabled:
                try:
                    await _bind(proxy)
                except ApiError:
                    await proxy.move(*before)  # a disabled proxy: addresses only, nothing to bind
                    raise
            elif not request.enabled and proxy.enabled:
                await proxy.stop()
            if body.get("enabled") is True:
                self._cancel_enable(name)
            elif body.get("enabled") is False:
                self._cancel_enable(name)
                if duration is not None:
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
            raise ApiError(400, "bad request body: populate takes a JSON array of proxies")
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

    async def reset(self) -> list[str]:
        """Enable every proxy and remove every toxic; return what could not be re-enabled."""
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
        return problems

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
        async with self._lock:
            proxy = self.get(proxy_name)
            spec = _check_toxic(body)
            if spec.name in proxy.toxics:
                raise ApiError(409, f"toxic already exists: {spec.name} (on proxy {proxy_name})")
            proxy.add_toxic(spec)
            if spec.duration_s is not None:
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
            raise ApiError(404, f"toxic not found: {toxic_name} (on proxy {proxy_name})")
        return spec

    async def update_toxic(self, proxy_name: str, toxic_name: str, body: Any) -> ToxicSpec:
        """Toxiproxy's ToxicUpdate: attributes merged onto the current ones, and toxicity."""
        if not isinstance(body, dict):
            raise ApiError(400, "bad request body: expected a JSON object")
        async with self._lock:
            spec = self.get_toxic(proxy_name, toxic_name)
            for fixed in ("name", "type", "stream"):
                if fixed in body and body[fixed] != getattr(spec, fixed):
                    raise ConfigurationError(fixed, "cannot be changed; delete and re-create the toxic")
            toxic = build_toxic(spec.type, body.get("attributes"), base=spec.toxic)
            toxicity = _check_toxicity(body.get("toxicity", spec.toxicity))
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
            raise ConfigurationError(
                field,
                f"is {address.host}, which is not a loopback address: start the proxy with --token "
                "to accept connections from other hosts",
            )
        return address


def _check_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"missing required field: {field} (a non-empty string)")
    if "/" in value or value != value.strip():
        raise ConfigurationError(field, f"must not contain '/' or surrounding spaces, got {value!r}")
    return value


def _check_toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigurationError("toxicity", f"must be a number between 0 and 1, got {shown(value)}")
    return float(value)


def _check_toxic(body: Any) -> ToxicSpec:
    """A toxic from Toxiproxy's JSON: defaults stream downstream, toxicity 1, name TYPE_STREAM."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad request body: a toxic must be a JSON object")
    type_name = body.get("type")
    if not isinstance(type_name, str) or not type_name:
        raise ApiError(400, "missing required field: type")
    stream = body.get("stream") or "downstream"
    if stream not in STREAMS:
        raise ApiError(400, f"stream was invalid, can be either upstream or downstream, got {stream!r}")
    toxicity = _check_toxicity(body.get("toxicity", 1.0))
    name = body.get("name") or f"{type_name}_{stream}"
    _check_name(name, "name")
    toxic = build_toxic(type_name, body.get("attributes"))
    duration = _check_duration(body.get("duration_s"))
    return ToxicSpec(name, type_name, stream, toxicity, toxic, duration_s=duration)


def _check_duration(value: Any) -> float | None:
    """Our ``duration_s`` (seconds until the daemon undoes a fault), or None when absent."""
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 0 < value <= MAX_DURATION_MS / 1000:
        raise ConfigurationError(
            "duration_s", f"must be a number of seconds > 0 and <= 86400, got {shown(value)}"
        )
    return float(value)


async def _bind(proxy: Proxy) -> None:
    await _guard(proxy.listen, proxy.start())


async def _guard(listen: str, change) -> None:
    """Await a change that may bind a listener; a taken address is the client's problem (409)."""
    try:
        await change
    except OSError as e:
        status = 409 if e.errno in (98, 48) else 400  # EADDRINUSE (Linux, macOS)
        raise ApiError(status, f"cannot listen on {listen}: {e.strerror or e}") from e


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
