"""Training: runs under the data root with their metric curves; start a ``workbench fit`` in
the background from a config, an optional checkpoint and typed overrides (no free text), and
follow every fit of the app's job registry while the app stays usable."""

import time

import pandas as pd
import streamlit as st
from common import data_root, error_box

from workbench.inspect.fit_options import fit_options
from workbench.inspect.jobs import JobRegistry
from workbench.inspect.paths import resolve_under
from workbench.inspect.runs import (
    find_checkpoints,
    find_configs,
    find_runs,
    read_metrics,
    run_checkpoints,
    start_fit,
)
from workbench.inspect.sweeps import find_sweeps, read_sweep

NO_CHECKPOINT = "(start afresh)"

root = data_root()
st.title("Training")

st.header("Runs")
runs = find_runs(root)
if not runs:
    st.info(f"No runs under {root} (folders with a metrics.csv written by `workbench fit`).")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {"run": r.name, "version": r.version, "folder": r.path,
                 "updated": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.modified))}
                for r in runs
            ]
        ),
        hide_index=True,
    )  # fmt: skip
    labels = [r.path for r in runs]
    chosen = st.selectbox("Run", labels, key="run")
    with error_box():
        curves = read_metrics(resolve_under(root, chosen))
        names = list(curves)
        default = [n for n in names if n.endswith("loss") or "/acc" in n][:4] or names[:2]
        picked = st.multiselect("Metrics", names, default=default, key="metrics")
        axis = st.radio("Against", ["step", "epoch"], horizontal=True, key="axis")
        if picked:
            frame = pd.concat(
                [
                    pd.Series(curves[n]["value"], index=curves[n][axis], name=n)
                    .groupby(level=0)
                    .last()
                    for n in picked
                ],
                axis=1,
            )
            st.line_chart(frame)
        folder = resolve_under(root, chosen)
        for name in ("hparams.yaml", "config.yaml"):
            if (folder / name).is_file():
                with st.expander(name):
                    st.code((folder / name).read_text(), language="yaml")
        checkpoints = run_checkpoints(root, chosen)
        if checkpoints:
            st.caption("Checkpoints: " + ", ".join(f"`{c}`" for c in checkpoints))

st.header("Sweeps")
sweeps = find_sweeps(root)
if not sweeps:
    st.info(f"No sweeps under {root} (folders written by `workbench tune`).")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {"sweep": s.path, "trials": s.trials, "finished": s.finished,
                 "updated": time.strftime("%Y-%m-%d %H:%M", time.localtime(s.modified))}
                for s in sweeps
            ]
        ),
        hide_index=True,
    )  # fmt: skip
    chosen_sweep = st.selectbox("Sweep", [s.path for s in sweeps], key="sweep")
    with error_box():
        sweep = read_sweep(root, chosen_sweep)
        if sweep.table:
            st.dataframe(pd.DataFrame(sweep.table), hide_index=True)
        if sweep.summary:
            best = sweep.summary["best"]
            st.markdown(
                f"Best trial **{best['trial']}**: {sweep.summary['metric']} "
                f"{best['validation']:.4f} (validation). {sweep.summary['test_note']}."
            )
        if sweep.plot is not None:
            st.image(str(sweep.plot), caption=f"{chosen_sweep}/tune.png")
        if sweep.best_yaml:
            with st.expander("best.yaml"):
                st.code(sweep.best_yaml, language="yaml")

st.header("Start a run")
configs = find_configs(root)
if not configs:
    st.info(f"No configs in {root / 'configs'}; put a LightningCLI YAML there.")
else:
    config = st.selectbox("Config", configs, key="config")
    resume = st.selectbox(
        "Resume from checkpoint", [NO_CHECKPOINT, *find_checkpoints(root)], key="resume"
    )
    st.caption("Overrides: an empty field keeps the config's value.")
    left, middle, right = st.columns(3)
    values = {
        "max_epochs": left.number_input("Max epochs", 1, 1000, None, key="max_epochs"),
        "learning_rate": middle.number_input(
            "Learning rate", 1e-7, 1.0, None, 1e-4, format="%g", key="learning_rate"
        ),
        "batch_size": right.number_input("Batch size", 1, 4096, None, key="batch_size"),
        "seed": left.number_input("Seed", 0, 2**32 - 1, None, key="fit_seed"),
        "devices": middle.number_input("Devices (processes)", 1, 8, None, key="devices"),
    }
    detached = st.checkbox("Keep running after the app stops", key="fit_detached")
    if st.button("Start fit", type="primary", key="fit_start"):
        with error_box():
            options = fit_options(**{k: v for k, v in values.items() if v is not None})
            checkpoint = None if resume == NO_CHECKPOINT else resume
            start_fit(root, config, options, checkpoint, detached=detached)


@st.fragment(run_every=2.0)
def follow_fits() -> None:
    registry = JobRegistry(root)
    for job in registry.jobs("fit")[:5]:
        elapsed = (job.ended_at or time.time()) - job.started
        detached = " (keeps running after the app stops)" if job.detached else ""
        st.write(
            f"`{job.info.get('config')}` into `{job.target}`: **{job.status}** after "
            f"{elapsed:.0f} s{detached}"
        )
        st.code(job.tail(20) or "(no output yet)", language="text")
        if job.running:
            if st.button("Stop run", key=f"stop_{job.id}"):
                registry.stop(job.id)
                st.rerun()
        elif st.button("Clear", key=f"clear_{job.id}"):
            registry.forget(job.id)
            st.rerun()


follow_fits()
