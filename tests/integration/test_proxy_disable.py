"""A proxy disabled with ``duration_s`` is enabled again by the daemon: one timer per proxy."""

from __future__ import annotations

import asyncio

import pytest

from chaosagenkit.exceptions import ConfigurationError
from tests.integration.proxy_support import connect, other_tasks, proxy_to, tcp_server, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network]


async def refused(proxy) -> bool:
    try:
        _, writer = await connect(proxy)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


def test_the_daemon_enables_a_proxy_again_after_its_duration():
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            port = proxy.listen_port
            await server.update_proxy("p", {"enabled": False, "duration_s": 0.2})
            assert not proxy.enabled and await refused(proxy)
            assert server.enable_due("p") is not None
            await wait_for(lambda: proxy.enabled, what="the proxy to come back up")
            assert proxy.listen_port == port and not await refused(proxy)
            assert server.enable_due("p") is None
            await wait_for(lambda: not proxy.connections, what="the probe connection to be forgotten")
        await wait_for(lambda: not other_tasks(), what="every task to finish")

    asyncio.run(scenario())


def test_a_timer_of_an_earlier_disable_does_not_end_a_later_one():
    async def scenario():
        loop = asyncio.get_running_loop()
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            await server.update_proxy("p", {"enabled": False, "duration_s": 0.2})
            first_due = server.enable_due("p")
            await server.update_proxy("p", {"enabled": True})
            assert server.enable_due("p") is None, "enabling cancels the timer"
            await server.update_proxy("p", {"enabled": False, "duration_s": 60})
            assert server.enable_due("p") > first_due + 30
            await wait_for(lambda: loop.time() > first_due + 0.3, what="the first timer's time to pass")
            assert not proxy.enabled, "the first partition's timer ended the second one"
            await server.update_proxy("p", {"enabled": False, "duration_s": 0.1})  # replaces, not adds
            await wait_for(lambda: proxy.enabled, what="the replacing timer")
            await server.update_proxy("p", {"enabled": False})
            due = server.enable_due("p")
            assert due is not None and due > loop.time() + 299, (
                "a disable without duration_s: the default TTL"
            )

    asyncio.run(scenario())


def test_a_disable_without_duration_comes_back_after_the_default_ttl():
    """As a Toxiproxy client disables a proxy (no duration_s): the daemon's default TTL applies."""

    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream, default_ttl_s=0.2) as (server, proxy):
            await server.update_proxy("p", {"enabled": False})
            assert not proxy.enabled and await refused(proxy)
            await wait_for(lambda: proxy.enabled, what="the proxy to come back up after the default TTL")
            assert not await refused(proxy)

    asyncio.run(scenario())


@pytest.mark.parametrize("undo", ["delete", "reset", "populate"])
def test_deleting_resetting_or_replacing_a_proxy_cancels_its_timer(undo):
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            await server.update_proxy("p", {"enabled": False, "duration_s": 60})
            if undo == "delete":
                await server.delete_proxy("p")
            elif undo == "reset":
                await server.reset()
                assert proxy.enabled
            else:
                await server.populate([{"name": "p", "listen": "127.0.0.1:0", "upstream": proxy.upstream}])
            assert server.enable_due("p") is None

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "body,words",
    [
        ({"enabled": True, "duration_s": 5}, 'applies only with "enabled": false'),
        ({"duration_s": 5}, 'applies only with "enabled": false'),
        ({"enabled": False, "duration_s": 0}, "'duration_s' must be > 0, got 0"),
        ({"enabled": False, "duration_s": "5"}, "'duration_s' must be a number, got '5'"),
        ({"enabled": False, "duration_s": 86_401}, "'duration_s' must be > 0 and <= 86400, got 86401"),
        ({"enabled": False, "duration_s": 10**400}, "'duration_s' must be > 0 and <= 86400, got an integer"),
    ],
)
def test_a_bad_duration_is_refused_and_changes_nothing(body, words):
    async def scenario():
        async with tcp_server() as upstream, proxy_to(upstream) as (server, proxy):
            with pytest.raises(ConfigurationError, match=words):
                await server.update_proxy("p", body)
            assert proxy.enabled and server.enable_due("p") is None

    asyncio.run(scenario())
