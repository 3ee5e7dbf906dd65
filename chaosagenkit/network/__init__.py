"""The fault proxy: links, toxic chains, the Toxiproxy-compatible API, and its activities."""
