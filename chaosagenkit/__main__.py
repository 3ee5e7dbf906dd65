"""``python -m chaosagenkit`` is the ``chaosagenkit`` command."""

from chaosagenkit.cli import main

main()
