"""Chaos Toolkit probes of chaosagenkit's service part (filled in by its issue)."""

__all__: list[str] = []
