"""The ``chaosagenkit`` command.

Each subcommand lives with the part of the system it runs and is imported
only when invoked, so ``chaosagenkit --help`` and ``chaosagenkit proxy``
never pay for ``import agenkit`` (about a second: scipy, scikit-learn).
"""

from __future__ import annotations

import importlib

import click

from chaosagenkit import __version__

__all__ = ["SUBCOMMANDS", "main"]

#: name -> (module:attribute of a click command, one-line help for --help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("chaosagenkit.service.cli:serve", "Serve an agenkit agent with run-time service faults."),
    "proxy": ("chaosagenkit.network.cli:proxy", "Run the fault proxy (Toxiproxy-compatible API)."),
    "llm-proxy": (
        "chaosagenkit.llm.cli:llm_proxy",
        "Serve the OpenAI and Anthropic APIs with provider faults.",
    ),
    "run": ("chaosagenkit.suite:run", "Run experiments, write journals, summarise verdicts."),
    "report": ("chaosagenkit.report.cli:report", "Turn journals into JUnit, Markdown and HTML."),
    "verdicts": (
        "chaosagenkit.report.cli:verdicts",
        "Print journals' verdicts and deviations as experiments record them.",
    ),
    "init-experiments": (
        "chaosagenkit.builtin_suite:init_experiments",
        "Copy the built-in experiments into a folder of your project.",
    ),
    "explore": (
        "chaosagenkit.explore.cli:explore",
        "Explore random fault schedules; shrink what breaks into minimal experiments.",
    ),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target[0].split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="chaosagenkit")
def main() -> None:
    """Real chaos for agenkit agents: service faults, network faults, middleware probes."""
