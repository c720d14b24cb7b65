"""Demo upstreams for `make run`: three small JSON services on loopback ports."""
