"""Answer checks for callers of composition hosts (a client's ``answer_check: "module:function"``).

The echo contract (content and ``request_id`` back) survives agenkit's
SequentialAgent, FallbackAgent, ConditionalAgent and patterns' ParallelAgent
with ``majority_vote``: their answer is one child's answer. agenkit's
``composition.ParallelAgent`` combines its children instead: content
``"[child]: <answer>"`` per line and metadata ``"<child>.<key>"``.
``every_part_answers`` checks each part of such an answer against the
request, so a part that belongs to another request is a wrong answer.
"""

from __future__ import annotations

from typing import Any

__all__ = ["every_part_answers"]


def every_part_answers(request: Any, answer: Any) -> bool:
    """True when the answer has at least one part and every part echoes this request."""
    metadata = answer.metadata or {}
    lines = str(answer.content).splitlines()
    if not lines:
        return False
    request_id = (request.metadata or {}).get("request_id")
    for line in lines:
        label, sep, content = line.partition("]: ")
        if not label.startswith("[") or not sep or content != request.content:
            return False
        if metadata.get(f"{label[1:]}.request_id") != request_id:
            return False
    return True
