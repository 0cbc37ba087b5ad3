"""Robustness: an evaluation folder written by ``workbench robustness``; epsilon curves, the
corruption table and the honesty checks, for a classifier or a dense model."""

import pandas as pd
import streamlit as st
from common import data_root, error_box, pick_path

from workbench.inspect.reports import (
    accuracy_rows,
    check_rows,
    corruption_rows,
    dense_corruption_rows,
    dense_plots,
    dense_rows,
    find_reports,
    is_dense_report,
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



def checks_section(report: dict) -> None:
    checks = check_rows(report)
    failed = [row["name"] for row in checks if row["status"] == "FAIL"]
    st.subheader("Honesty checks")
    if failed:
        st.error(f"Failed checks: {', '.join(failed)}; the robust numbers may be overstated.")
    st.dataframe(pd.DataFrame(checks), hide_index=True)


def plots_section(plots: dict[str, bytes]) -> None:
    columns = st.columns(len(plots))
    for column, (name, png) in zip(columns, plots.items(), strict=True):
        column.image(png, caption=name, width="stretch")


def failed_count(report: dict) -> str:
    failed = [row for row in check_rows(report) if row["status"] == "FAIL"]
    return "all pass" if not failed else f"{len(failed)} failed"


if report is not None and is_dense_report(report):
    st.caption(
        f"A {report['task']} model on {report.get('data', '')}: {report['n']} images, "
        f"{report['norm']} threat model, attacks {', '.join(report['attacks'])}"
    )
    heads = list(report["sweep"])
    columns = st.columns(len(heads) + 1)
    for column, head in zip(columns, heads, strict=False):
        metric = {"seg": "miou", "depth": "absrel"}[head]
        last = list(report["worst_case"][head])[-1]
        column.metric(f"{metric}: clean, worst case at eps {last}",
                      f"{report['clean'][metric]:.3f} / "
                      f"{report['worst_case'][head][last][metric]:.3f}")  # fmt: skip
    columns[-1].metric("Honesty checks", failed_count(report))
    checks_section(report)
    plots_section(dense_plots(report))
    st.subheader("Adversarial sweep")
    st.dataframe(pd.DataFrame(dense_rows(report)), hide_index=True)
    if report["corruptions"]:
        st.subheader("Corruptions")
        st.dataframe(pd.DataFrame(dense_corruption_rows(report)), hide_index=True)
elif report is not None:
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
    d.metric("Honesty checks", failed_count(report))
    checks_section(report)
    plots_section(report_plots(report))
    st.subheader("Adversarial accuracy")
    st.dataframe(pd.DataFrame(accuracy_rows(report)), hide_index=True)
    if report["corruptions"]:
        st.subheader("Corruptions")
        st.dataframe(pd.DataFrame(corruption_rows(report)), hide_index=True)
