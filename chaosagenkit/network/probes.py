"""Chaos Toolkit probes of chaosagenkit's network part (filled in by its issue)."""

__all__: list[str] = []
