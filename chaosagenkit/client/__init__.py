"""The traffic harness: real agenkit RemoteAgent and middleware, traffic, and probes."""
