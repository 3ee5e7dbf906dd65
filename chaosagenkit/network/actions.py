"""Chaos Toolkit actions of chaosagenkit's network part (filled in by its issue)."""

__all__: list[str] = []
