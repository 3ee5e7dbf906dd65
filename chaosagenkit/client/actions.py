"""Chaos Toolkit actions of chaosagenkit's client part (filled in by its issue)."""

__all__: list[str] = []
