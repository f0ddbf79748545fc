"""Subcommands of the command line, one module each (``add_arguments`` and ``run``)."""

__all__: list[str] = []
