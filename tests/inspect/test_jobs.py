"""The app's job registry: one JSON per job under ROOT/.workbench-app/jobs, seen by every tab and
by an app started again; no two jobs write into one folder; stale records read as ended; a job
stops when the app's process goes away (a real kill), unless it was started detached."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import psutil
import pytest

from tests.conftest import process_gone, wait_until
from workbench.errors import WorkbenchError
from workbench.inspect.jobs import APP_PID_ENV, JobRegistry, check_room

SLOW = "import time\nprint('ready', flush=True)\ntime.sleep(600)"
# A job with a grandchild in its process group, which must end with it.
FAMILY = (
    "import subprocess, sys, time\n"
    "kid = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "print('kid', kid.pid, flush=True)\n"
    "time.sleep(600)"
)


def test_jobs_are_recorded_logged_and_finish(tmp_path):
    registry = JobRegistry(tmp_path)
    done = registry.start("echo", [sys.executable, "-c", "print('one'); print('two')"], "out/a")
    failed = registry.start("echo", [sys.executable, "-c", "raise SystemExit(3)"], "out/b")
    wait_until(lambda: not registry.get(done.id).running and not registry.get(failed.id).running)
    assert registry.get(done.id).status == "finished" and registry.get(done.id).tail(1) == "two"
    assert (registry.get(failed.id).status, registry.get(failed.id).exit_code) == ("failed", 3)
    saved = json.loads((tmp_path / ".workbench-app" / "jobs" / f"{done.id}.json").read_text())
    assert saved["kind"] == "echo" and saved["target"] == "out/a" and saved["status"] == "finished"
    assert saved["pid"] == saved["pgid"] and saved["log"].endswith(".log") and saved["started"]
    assert saved["command"][-1] == "print('one'); print('two')"
    registry.forget(done.id)
    assert [j.id for j in registry.jobs()] == [failed.id]


def test_one_folder_one_job_across_registries_and_stop(tmp_path):
    first = JobRegistry(tmp_path).start("render", [sys.executable, "-c", SLOW], "data/x")
    other_tab = JobRegistry(tmp_path)  # another tab, or the app started again
    wait_until(lambda: "ready" in other_tab.get(first.id).tail())
    for target in ("data/x", "data/x/clone", "data"):
        with pytest.raises(WorkbenchError, match=f"render job {first.id} .* still running"):
            other_tab.start("render", [sys.executable, "-c", "pass"], target)
    assert [j.id for j in other_tab.jobs()] == [first.id]  # nothing else started
    with pytest.raises(WorkbenchError, match="still running"):
        other_tab.forget(first.id)
    stopped = other_tab.stop(first.id)
    assert stopped.status == "stopped" and process_gone(first.pid)
    second = other_tab.start("render", [sys.executable, "-c", "pass"], "data/x")  # free again
    wait_until(lambda: other_tab.get(second.id).status == "finished")


def test_at_most_a_few_jobs_run_at_once(tmp_path):
    registry = JobRegistry(tmp_path)
    jobs = [registry.start("fit", [sys.executable, "-c", SLOW], f"runs/{i}") for i in range(4)]
    with pytest.raises(WorkbenchError, match=f"fit: 4 jobs are running already .*{jobs[0].id}"):
        registry.start("fit", [sys.executable, "-c", "pass"], "runs/more")
    registry.stop(jobs[0].id)
    registry.start("fit", [sys.executable, "-c", "pass"], "runs/more")
    for job in jobs[1:]:
        registry.stop(job.id)


def test_stale_records_read_as_ended(tmp_path):
    registry = JobRegistry(tmp_path)
    job = registry.start("fit", [sys.executable, "-c", SLOW], "runs/a")
    path = registry.folder / f"{job.id}.json"
    os.killpg(job.pgid, signal.SIGKILL)  # no supervisor left to write the status
    wait_until(lambda: registry.get(job.id).status == "ended")
    assert "gone" in registry.get(job.id).reason

    reused = json.loads(path.read_text())  # a live pid that is another process now
    reused.update(id="fit-reused", status="running", pid=os.getpid(), pgid=os.getpid(), created=1.0)
    (registry.folder / "fit-reused.json").write_text(json.dumps(reused))
    assert registry.get("fit-reused").status == "ended"
    registry.start("fit", [sys.executable, "-c", "pass"], "runs/a")  # the folder is free


def test_jobs_stop_when_the_watched_app_is_killed_unless_detached(tmp_path, monkeypatch):
    app = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    monkeypatch.setenv(APP_PID_ENV, str(app.pid))
    registry = JobRegistry(tmp_path)
    attached = registry.start("render", [sys.executable, "-c", FAMILY], "a")
    detached = registry.start("render", [sys.executable, "-c", SLOW], "b", detached=True)
    wait_until(lambda: "kid" in attached.tail() and "ready" in detached.tail())
    kid = int(attached.tail().split()[-1])
    command = psutil.Process(attached.pid).children()[0].pid
    app.kill()
    app.wait()
    wait_until(lambda: registry.get(attached.id).status == "stopped")
    assert registry.get(attached.id).reason == "the app stopped"
    wait_until(lambda: process_gone(attached.pid) and process_gone(command) and process_gone(kid))
    assert registry.get(detached.id).running and not process_gone(detached.pid)
    registry.stop(detached.id)
    assert process_gone(detached.pid)


def test_too_little_room_is_refused(tmp_path, monkeypatch):
    check_room(tmp_path, 1, "render into x")  # this disk has 200 MB
    monkeypatch.setattr("shutil.disk_usage", lambda _p: SimpleNamespace(total=1, used=1, free=0))
    with pytest.raises(WorkbenchError, match="render into x: needs about 200 MB free"):
        check_room(tmp_path, 1, "render into x")
