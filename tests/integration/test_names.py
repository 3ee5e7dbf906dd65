"""Names are data: one rule at the activity boundary, escaped in every URL, never fatal to teardown.

Against a real ``chaosagenkit proxy`` and real chaos hosts. Proxies whose
names the rule refuses (``x?y``) are created through the raw API, as
another client of a shared proxy might, to show that an activity neither
acts on the wrong proxy nor leaves a daemon behind.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosagenkit.control_client import ControlClient, path
from chaosagenkit.exceptions import ConfigurationError
from chaosagenkit.names import MAX_NAME_LENGTH, check_name, is_name
from chaosagenkit.network import actions, daemons, probes
from chaosagenkit.sandbox import SANDBOX, ProxyRef
from chaosagenkit.service import actions as service_actions
from chaosagenkit.service import hosts
from chaosagenkit.service import probes as service_probes
from tests.integration.test_service_support import pid_alive

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_network]

BAD_NAMES = [
    "x?y",
    "x#y",
    "x/y",
    "x%2Fy",
    "..",
    ".hidden",
    "",
    " x",
    "héllo",
    "a" * (MAX_NAME_LENGTH + 1),
    None,
    7,
]


@pytest.mark.parametrize(
    "name", ["x", "target_proxy", "latency_downstream", "a.b-c_9", "A" * MAX_NAME_LENGTH]
)
def test_good_names(name):
    assert is_name(name) and check_name(name, "proxy") == name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_one_line_errors(name):
    assert not is_name(name)
    with pytest.raises(ConfigurationError) as caught:
        check_name(name, "proxy")
    assert str(caught.value).startswith("'proxy' must be a name of 1 to 64 ASCII letters")
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 250


@pytest.fixture
def run() -> Iterator[ControlClient]:
    """A run with a started proxy daemon, proxy 'x' (with a toxic) and, made raw, proxy 'x?y'."""
    SANDBOX.reset()
    SANDBOX.seed = 7
    listener = socket.create_server(("127.0.0.1", 0))
    upstream = f"127.0.0.1:{listener.getsockname()[1]}"
    daemon = daemons.start_or_register_daemon({}, {})
    actions.create_proxy("x", upstream)
    actions.inject_latency("x", 10, name="slow")
    api = ControlClient(daemon.url)
    api.post("/proxies", {"name": "x?y", "listen": "127.0.0.1:0", "upstream": upstream})
    yield api
    daemons.teardown()
    SANDBOX.reset()
    listener.close()


def test_a_name_with_url_syntax_never_acts_on_another_proxy(run):
    calls = [
        lambda: actions.remove_toxic(proxy="x?y", name="slow"),
        lambda: actions.remove_toxic(proxy="x", name="slow?"),
        lambda: actions.remove_toxic(proxy="x", name="a?b"),
        lambda: actions.disable_proxy("x?y"),
        lambda: actions.delete_proxy("x#y"),
        lambda: actions.inject_latency("x?y", 10),
        lambda: actions.inject_latency("x", 10, name="x/../y"),
        lambda: probes.list_toxics("x?y"),
        lambda: probes.traffic_impacted("x", "slow?y"),
        lambda: actions.create_proxy("x?z", "127.0.0.1:9"),
    ]
    events = len(SANDBOX.timeline())
    for call in calls:
        with pytest.raises(ActivityFailed) as caught:
            call()
        assert "must be a name of 1 to 64" in str(caught.value) and "\n" not in str(caught.value)
    assert [t["name"] for t in run.get("/proxies/x/toxics")] == ["slow"], "proxy x was touched"
    assert run.get("/proxies/x")["enabled"] is True
    assert sorted(run.get("/proxies")) == ["x", "x?y"]
    assert len(SANDBOX.timeline()) == events


def test_a_non_ascii_name_is_a_one_line_error_not_a_unicode_error(run):
    for call in (
        lambda: actions.remove_toxic(proxy="prøxy", name="slow"),
        lambda: actions.inject_latency("x", 10, name="lätency"),
        lambda: service_actions.inject_failure_rate("sérver", rate=0.5),
        lambda: service_probes.server_is_up("sérver"),
        lambda: service_actions.start_server("sérver"),
    ):
        with pytest.raises(ActivityFailed) as caught:
            call()
        assert "must be a name of 1 to 64" in str(caught.value)
        assert not isinstance(caught.value.__cause__, UnicodeError)


def test_names_are_escaped_in_urls(run):
    assert run.get(path("proxies", "x?y"))["name"] == "x?y"
    run.delete(path("proxies", "x?y"))
    assert sorted(run.get("/proxies")) == ["x"], "deleting 'x?y' removed exactly that proxy"


def test_teardown_never_raises_on_a_name_and_stops_the_daemon(run):
    daemon = next(iter(SANDBOX.proxy_daemons.values()))
    # A registration no activity can make (names are checked first): what teardown must survive.
    SANDBOX.proxies["héllo?"] = ProxyRef("héllo?", daemon.name, "127.0.0.1:1", "127.0.0.1:9")
    daemons.teardown()
    assert daemon.process.returncode is not None and not pid_alive(daemon.process.pid)
    assert SANDBOX.proxies == {} and SANDBOX.proxy_daemons == {}


def test_servers_are_named_by_the_same_rule():
    SANDBOX.reset()
    for spec in ({"name": "a b"}, {"name": "x?y"}, {"name": "ü"}):
        with pytest.raises(ConfigurationError, match="'name' must be a name of 1 to 64"):
            hosts.start_or_register(spec)
    with pytest.raises(ConfigurationError, match=r"'proxy\.name' must be a name"):
        daemons.start_or_register_daemon({"name": "p?"}, {})
    with pytest.raises(ConfigurationError, match=r"'proxies\.name' must be a name"):
        daemons.declare_proxy_from_spec({"name": "p#", "upstream": "127.0.0.1:9"})
    assert SANDBOX.servers == {} and SANDBOX.proxy_daemons == {}


MALFORMED = "http://[::1"


def test_a_malformed_control_url_is_a_one_line_error_everywhere():
    SANDBOX.reset()
    configuration = {"toxiproxy_url": MALFORMED}
    activity_calls = [
        (lambda: service_actions.inject_failure_rate(MALFORMED, rate=0.5), "'server' is not a valid URL"),
        (lambda: service_probes.server_is_up(MALFORMED), "'server' is not a valid URL"),
        (
            lambda: actions.inject_latency("x", 10, configuration=configuration),
            "'toxiproxy_url' is not a valid",
        ),
        (lambda: actions.reset_proxies(configuration=configuration), "'toxiproxy_url' is not a valid URL"),
    ]
    for call, words in activity_calls:
        with pytest.raises(ActivityFailed) as caught:
            call()
        assert words in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="'control_url' is not a valid URL"):
        hosts.start_or_register({"name": "ext", "control_url": MALFORMED})
    with pytest.raises(ConfigurationError, match=r"'proxy\.url' is not a valid URL"):
        daemons.start_or_register_daemon({"url": MALFORMED}, {})
    with pytest.raises(ConfigurationError, match="'toxiproxy_url' is not a valid URL"):
        daemons.start_or_register_daemon({}, configuration)
    with pytest.raises(ConfigurationError, match="'toxiproxy_host' is not a valid URL"):
        daemons.start_or_register_daemon({}, {"toxiproxy_host": "[::1"})
    assert SANDBOX.servers == {} and SANDBOX.proxy_daemons == {}
