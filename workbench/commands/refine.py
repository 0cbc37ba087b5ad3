"""``workbench refine``: not built yet (placeholder removed when its issue lands)."""

import argparse

HELP = "(in progress)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds this command's options."""


def run(args: argparse.Namespace) -> int:
    """Runs the command."""
    raise SystemExit("workbench refine: not available yet")
