"""ASHA that survives a kill: Ray Tune restores trials and the searcher after a restart but
builds the scheduler afresh, so early-stopping decisions made before the kill would be lost and
a rerun trial judged against nothing. :class:`ResumableASHA` writes its rungs and every decision
to a file as it makes them, reads them back after a restart, and replays the same decision when
a rerun trial reports an epoch it had reported before."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ray.tune.schedulers import ASHAScheduler


class ResumableASHA(ASHAScheduler):
    """:class:`ray.tune.schedulers.ASHAScheduler` (one bracket) with its state in ``state``.

    Args:
        state: the JSON file of rungs and decisions.
        **options: ASHA's options (``max_t``, ``grace_period``, ``reduction_factor``).
    """

    def __init__(self, state: str | Path, **options: Any):
        super().__init__(brackets=1, **options)
        self._state = str(state)
        self._decisions: dict[str, str] | None = None

    def _load(self) -> dict[str, str]:
        if self._decisions is None:
            self._decisions = {}
            if os.path.isfile(self._state):
                saved = json.loads(Path(self._state).read_text())
                for (_, recorded), rung in zip(self._brackets[0]._rungs, saved["rungs"],
                                               strict=True):  # fmt: skip
                    recorded.update(rung)
                self._decisions = saved["decisions"]
                self._num_stopped = saved["stopped"]
        return self._decisions

    def _save(self) -> None:
        state = {
            "rungs": [recorded for _, recorded in self._brackets[0]._rungs],
            "decisions": self._decisions,
            "stopped": self._num_stopped,
        }
        partial = self._state + ".partial"
        Path(partial).write_text(json.dumps(state))
        os.replace(partial, self._state)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._load()
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        decisions = self._load()
        key = f"{trial.trial_id}@{result.get(self._time_attr)}"
        if key not in decisions:
            decisions[key] = super().on_trial_result(tune_controller, trial, result)
            self._save()
        return decisions[key]

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self._load()
        if trial.trial_id in self._trial_info:
            super().on_trial_complete(tune_controller, trial, result)
            self._save()
