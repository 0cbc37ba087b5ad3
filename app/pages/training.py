"""Training: runs under the data root with their metric curves; start a ``workbench fit`` in
the background and follow its log while the app stays usable."""

import time

import pandas as pd
import streamlit as st
from common import data_root, error_box

from workbench.inspect.paths import resolve_under
from workbench.inspect.runs import (
    find_configs,
    find_runs,
    read_metrics,
    run_checkpoints,
    start_fit,
)

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

st.header("Start a run")
configs = find_configs(root)
if not configs:
    st.info(f"No configs in {root / 'configs'}; put a LightningCLI YAML there.")
else:
    config = st.selectbox("Config", configs, key="config")
    overrides = st.text_input(
        "Overrides",
        "",
        key="overrides",
        help="e.g. --trainer.max_epochs 2 --model.init_args.lr 0.01",
    )
    busy = "fit" in st.session_state and st.session_state["fit"].status() == "running"
    if st.button("Start fit", type="primary", disabled=busy, key="fit_start"):
        with error_box():
            st.session_state["fit"] = start_fit(root, config, overrides)


@st.fragment(run_every=2.0)
def follow_fit() -> None:
    job = st.session_state.get("fit")
    if job is None:
        return
    status = job.status()
    elapsed = time.time() - job.started
    st.write(f"`{' '.join(job.command[2:])}`: **{status}** after {elapsed:.0f} s")
    st.code(job.tail(20) or "(no output yet)", language="text")
    if status == "running":
        if st.button("Stop run", key="fit_stop"):
            job.stop()
            st.rerun()
    elif st.button("Clear", key="fit_clear"):
        del st.session_state["fit"]
        st.rerun()


follow_fit()
