"""Robustness: an evaluation folder written by ``workbench robustness``; epsilon curves, the
corruption table and the honesty checks."""

import pandas as pd
import streamlit as st
from common import data_root, error_box, pick_path

from workbench.inspect.reports import (
    accuracy_rows,
    check_rows,
    corruption_rows,
    find_reports,
    read_report,
    report_plots,
)

root = data_root()
st.title("Robustness")

folder = pick_path("Evaluation folder", find_reports(root), key="report")
report = None
if folder:
    with error_box():
        report = read_report(root, folder)

if report is not None:
    st.caption(
        f"{report.get('model', '')} on {report.get('data', '')}: {report.get('n_examples', '?')} "
        f"examples, {report['norm']} threat model"
    )
    worst = list(report["worst_case_acc"].items())
    a, b, c, d = st.columns(4)
    a.metric("Clean accuracy", f"{report['clean_acc']:.3f}")
    if worst:
        b.metric(f"Worst case at eps {worst[-1][0]}", f"{worst[-1][1]:.3f}")
    if report.get("mean_corruption_acc") is not None:
        c.metric("Mean corruption accuracy", f"{report['mean_corruption_acc']:.3f}")
    checks = check_rows(report)
    failed = [row["name"] for row in checks if row["status"] == "FAIL"]
    d.metric("Honesty checks", "all pass" if not failed else f"{len(failed)} failed")

    st.subheader("Honesty checks")
    if failed:
        st.error(f"Failed checks: {', '.join(failed)}; the robust accuracy may be overstated.")
    st.dataframe(pd.DataFrame(checks), hide_index=True)

    plots = report_plots(report)
    columns = st.columns(len(plots))
    for column, (name, png) in zip(columns, plots.items(), strict=True):
        column.image(png, caption=name, width="stretch")

    st.subheader("Adversarial accuracy")
    st.dataframe(pd.DataFrame(accuracy_rows(report)), hide_index=True)
    if report["corruptions"]:
        st.subheader("Corruptions")
        st.dataframe(pd.DataFrame(corruption_rows(report)), hide_index=True)
