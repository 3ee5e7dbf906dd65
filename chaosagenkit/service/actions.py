"""Chaos Toolkit actions of chaosagenkit's service part (filled in by its issue)."""

__all__: list[str] = []
