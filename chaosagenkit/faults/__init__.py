"""Pure fault logic: no sockets, no event loop, no chaoslib."""
