"""Runnable examples: ``wsserver run examples.echo:EchoView``."""
