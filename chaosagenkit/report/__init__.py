"""Journals turned into JUnit XML, Markdown summaries and self-contained HTML."""
