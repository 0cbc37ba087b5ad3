"""Cleaning: the training items a ``workbench clean`` run suspects of wrong labels, as a grid
(image, given label, predicted label, score), with a keep / exclude decision per item written
back to the run's ``exclude.json``."""

import time

import streamlit as st
from common import data_root, error_box, to_uint8

from workbench.inspect.cleaning import (
    DECISIONS,
    find_cleanings,
    read_cleaning,
    review,
    suspect_images,
)
from workbench.inspect.preview import enlarge

COLUMNS = 6

root = data_root()
st.title("Cleaning")

cleanings = [c for c in find_cleanings(root) if c.finished]
if not cleanings:
    st.info(f"No finished cleaning runs under {root} (folders written by `workbench clean`).")
    st.stop()

labels = {
    c.path: f"{c.path} ({time.strftime('%Y-%m-%d %H:%M', time.localtime(c.modified))})"
    for c in cleanings
}
chosen = st.selectbox("Cleaning run", list(labels), format_func=labels.get, key="cleaning")
top = st.number_input("Suspects shown", 6, 240, 48, 6, key="top")
with error_box():
    cleaning = read_cleaning(root, chosen, int(top))
    report = cleaning.report
    st.markdown(
        f"**{report['flagged']}** of {report['items']} training items flagged by "
        f"`{report['method']}` ({report['folds']} folds, {report['members']} member(s); "
        f"held-out accuracy against the given labels {report['held_out_accuracy']:.3f})."
    )
    if report.get("noise"):
        d = report["noise"]["detection"]
        st.markdown(
            f"Against the {d['flipped']} labels flipped on purpose: precision "
            f"{d['precision'] or 0:.3f}, recall {d['recall'] or 0:.3f}."
        )
    images = suspect_images(root, chosen, cleaning.suspects)
    decisions = {}
    for start in range(0, len(cleaning.suspects), COLUMNS):
        row = cleaning.suspects[start : start + COLUMNS]
        for column, suspect, image in zip(
            st.columns(COLUMNS), row, images[start : start + COLUMNS], strict=False
        ):
            column.image(
                enlarge(to_uint8(image), 96),
                caption=f"#{suspect.rank} given {suspect.given}, predicted {suspect.predicted} "
                f"({suspect.score:.3f})",
            )
            decisions[suspect.key] = column.radio(
                "Decision",
                DECISIONS,
                index=DECISIONS.index(suspect.decision),
                key=f"decision_{suspect.key}",
                horizontal=True,
                label_visibility="collapsed",
            )
    left = ", ".join(f"{n} {name}" for name, n in cleaning.excluded.items())
    st.caption(f"Left out now: {left}. Sources read it with `exclude: {chosen}/exclude.json`.")
    if st.button("Save decisions", key="clean_save", type="primary"):
        counts = review(root, chosen, decisions)
        saved = ", ".join(f"{n} {name}" for name, n in counts.items())
        st.success(f"Saved to {chosen}/exclude.json: {saved} items left out.")
