"""LLM-provider chaos: a fault endpoint speaking the OpenAI and Anthropic APIs (``chaosagenkit llm-proxy``).

Pure parts: ``faults`` (specs and the per-request policy), ``sse`` (the
event-stream writer and parser), ``stream`` (how faults shape a stream),
``openai_wire`` / ``anthropic_wire`` (the two APIs' payloads) and
``responder`` (the built-in deterministic model). I/O: ``server`` and
``control_api`` (the endpoint), ``cli`` (the command), ``process`` (the
endpoint as a child of a chaos run). Chaos Toolkit face: ``actions`` and
``probes``. ``targets`` holds agents answering through agenkit's LLM adapters.
"""
