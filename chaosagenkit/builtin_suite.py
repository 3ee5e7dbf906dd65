"""The experiments that ship with chaosagenkit, and ``chaosagenkit init-experiments``.

Where they are: an installed wheel carries them as package data
(``chaosagenkit/experiments/*.json``, copied there from the repository's
``experiments/`` folder by ``setup.py``'s build step); a source checkout or
an editable install reads the repository's ``experiments/`` folder itself.
One folder of truth in the repository, no second copy to keep in step.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

__all__ = ["copy_experiments", "experiments_dir", "init_experiments"]

_PACKAGE = Path(__file__).resolve().parent


def experiments_dir() -> Path:
    """The folder of the built-in experiments (package data, else the source checkout's)."""
    for candidate in (_PACKAGE / "experiments", _PACKAGE.parent / "experiments"):
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    raise click.ClickException(
        "the built-in experiments are missing from this installation (reinstall chaosagenkit)"
    )


def copy_experiments(destination: Path, force: bool = False) -> list[Path]:
    """Copy every built-in experiment into ``destination``; refuse to overwrite unless ``force``.

    Nothing is copied when one file would be overwritten without ``force``.
    """
    sources = sorted(experiments_dir().glob("*.json"))
    targets = [destination / source.name for source in sources]
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        raise click.ClickException(
            f"{existing[0]} exists ({len(existing)} of {len(targets)} files would be overwritten): "
            "nothing copied; use --force to overwrite"
        )
    destination.mkdir(parents=True, exist_ok=True)
    for source, target in zip(sources, targets, strict=True):
        shutil.copyfile(source, target)
    return targets


@click.command("init-experiments")
@click.argument("destination", type=click.Path(file_okay=False, path_type=Path), default=Path("experiments"))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init_experiments(destination: Path, force: bool) -> None:
    """Copy the built-in experiments into DESTINATION (default: ./experiments).

    Then point them at your agent with configuration alone, e.g.
    ``chaosagenkit run experiments --var target_agent=myteam.agents:support_bot``.
    """
    copied = copy_experiments(destination, force)
    click.echo(f"copied {len(copied)} experiments into {destination}/")
