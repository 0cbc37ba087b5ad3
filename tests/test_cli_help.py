"""``workbench --help`` lists every command, the Lightning CLI's among them."""

from __future__ import annotations

import re

from workbench.cli import COMMANDS, LIGHTNING_COMMANDS

BUILT_IN = ("render", "export", "verify", "experiment", "demo")


def test_help_lists_every_command_with_a_line_of_help(cli):
    helped = cli("--help").stdout
    listed = set(re.findall(r"^ {4}(\S+) +\S", helped, re.MULTILINE))
    assert {"fit", "validate", "test", "predict"} <= set(LIGHTNING_COMMANDS)
    missing = {*LIGHTNING_COMMANDS, *BUILT_IN, *COMMANDS} - listed
    assert not missing, helped


def test_a_lightning_command_still_goes_to_the_lightning_cli(cli):
    helped = cli("fit", "--help").stdout
    assert "--trainer.max_epochs" in helped and "--config" in helped
