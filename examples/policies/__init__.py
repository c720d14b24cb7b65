"""A policy in one module: the README's worked example."""
