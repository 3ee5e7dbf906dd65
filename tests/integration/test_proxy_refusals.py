"""A listen address beyond loopback, refused without a token: the reason reaches whoever asked."""

from __future__ import annotations

import asyncio
import logging

import pytest

from chaosagenkit.exceptions import ConfigurationError, ControlAPIError
from chaosagenkit.network import daemons
from chaosagenkit.network.server import ProxyServer
from chaosagenkit.sandbox import ProxyDaemonRef

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network]

EVERYWHERE = {"name": "open", "listen": "0.0.0.0:0", "upstream": "127.0.0.1:9"}


def test_the_daemon_logs_the_refusal_at_warning(caplog):
    async def scenario():
        server = ProxyServer(seed=1)
        try:
            with pytest.raises(ConfigurationError, match="not a loopback address"):
                await server.create_proxy(EVERYWHERE)
        finally:
            await server.close()

    with caplog.at_level(logging.WARNING, logger="chaosagenkit.proxy"):
        asyncio.run(scenario())
    assert any(
        "not a loopback address" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
    )


def test_our_callers_get_the_reason_in_the_error():
    process, ready = daemons.start_daemon()
    try:
        ref = ProxyDaemonRef(name="proxy", url=ready["api"], token=None)
        with pytest.raises(ControlAPIError, match=r"0\.0\.0\.0, which is not a loopback address"):
            daemons.create_proxy(ref, "open", "127.0.0.1:9", "0.0.0.0:0")
    finally:
        daemons.stop_daemon(process)
