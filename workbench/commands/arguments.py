"""Command-line options that several commands share (standard library only, for fast --help)."""

import argparse


def add_configs(parser: argparse.ArgumentParser) -> None:
    """Adds ``-c/--config`` (repeatable, into ``configs``): a Lightning CLI config and its
    overlays, as ``workbench fit`` takes them."""
    parser.add_argument(
        "-c",
        "--config",
        action="append",
        required=True,
        dest="configs",
        help="Lightning CLI config; repeat for overlays (as workbench fit)",
    )
