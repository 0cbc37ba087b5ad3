"""Thin ``workbench`` subcommands that live beside no single part: each module has ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int`` and imports only the standard library at load
time (the work is imported inside ``run``)."""
