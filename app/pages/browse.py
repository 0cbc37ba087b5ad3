"""Browse: datasets under the data root; a filtered grid, one sample in full (with a dense
checkpoint's prediction beside the ground truth), statistics, and paired conditions side by
side."""

import pandas as pd
import streamlit as st
from common import data_root, error_box, show_images

from workbench.inspect.datasets import (
    filter_rows,
    find_datasets,
    find_paired,
    load_sample,
    manifest_stamp,
    open_under,
    paired_rgb,
    sample_rows,
    statistics,
)
from workbench.inspect.dense import dense_prediction, load_dense
from workbench.inspect.paths import resolve_under
from workbench.inspect.preview import enlarge, sample_views
from workbench.inspect.runs import find_checkpoints

GRID = 48
root = data_root()
st.title("Browse")


@st.cache_resource(show_spinner="Loading the dense model...", max_entries=4)
def dense_model(path: str, stamp: float):
    return load_dense(root, path)


@st.cache_data(show_spinner="Indexing samples...", max_entries=16)
def index(paths: tuple[str, ...], stamps: tuple[float, ...]) -> list[dict]:
    return sample_rows(root, paths)


found = {d.path: d for d in find_datasets(root)}
left, right = st.columns([3, 2])
chosen = left.multiselect("Datasets", list(found), default=list(found)[:1], key="datasets")
typed = right.text_input("Another dataset folder under the data root", key="typed").strip()
if typed:
    with error_box():
        chosen = [*chosen, str(resolve_under(root, typed).relative_to(root))]
for path in chosen:
    if path in found and found[path].problem:
        st.error(f"{path}: {found[path].problem}", icon=":material/error:")
chosen = [p for p in chosen if not (p in found and found[p].problem)]
if not found and not typed:
    st.info(f"No datasets under {root}; make one on the Generate page.")

rows = None
if chosen:
    with error_box():
        rows = index(tuple(chosen), tuple(manifest_stamp(root, p) for p in chosen))

if rows:
    with st.sidebar:
        st.subheader("Filters")
        classes = st.multiselect("Class", sorted({r["class"] for r in rows}), key="f_class")
        conditions = st.multiselect(
            "Condition", sorted({r["condition"] for r in rows}), key="f_condition"
        )
        sources = st.multiselect("Source", sorted({r["source"] for r in rows}), key="f_source")
        difficulty = st.slider("Difficulty", 0.0, 1.0, (0.0, 1.0), 0.01, key="f_difficulty")
    shown = filter_rows(rows, classes, conditions, sources, difficulty)
    st.caption(f"{len(shown)} of {len(rows)} samples match the filters.")
    grid, one, stats, paired = st.tabs(["Grid", "Sample", "Statistics", "Paired conditions"])

    with grid:
        columns = st.columns(8)
        for position, row in enumerate(shown[:GRID]):
            with columns[position % 8], error_box():
                rgb = load_sample(open_under(root, row["source"], ("rgb",)), row["index"])["rgb"]
                st.image(
                    rgb, caption=f"{row['class']} · d={row['difficulty']:.2f}", width="stretch"
                )
        if len(shown) > GRID:
            st.caption(f"First {GRID} shown; narrow the filters to see others.")

    with one:
        if shown:
            labels = [f"{r['source']} #{r['index']}" for r in shown]
            pick = st.selectbox("Sample", range(len(shown)), format_func=labels.__getitem__)
            row = shown[pick]
            with error_box():
                dataset = open_under(root, row["source"])
                sample = load_sample(dataset, row["index"])
                show_images(sample_views(sample, sample["meta"]), columns=6)
                meta = sample["meta"]
                st.caption(f"class {meta['label_name']} · difficulty {meta['difficulty']:.3f}")
                rows = [{k: v for k, v in o.items() if k != "amodal_mask"} for o in meta["objects"]]
                st.dataframe(pd.DataFrame(rows), hide_index=True)
                st.json(
                    {k: meta[k] for k in ("condition", "difficulty_terms", "factors", "camera")},
                    expanded=1,
                )
            st.subheader("A dense model on this sample")
            checkpoints = ["(none)", *find_checkpoints(root)]
            dense = st.selectbox("Dense checkpoint", checkpoints, key="dense_ckpt")
            if dense != "(none)":
                with error_box():
                    model = dense_model(dense, (root / dense).stat().st_mtime)
                    views, scores = dense_prediction(model, sample, dataset.classes)
                    show_images(views, columns=len(views))
                    for column, (name, value) in zip(st.columns(len(scores)), scores.items(),
                                                     strict=True):  # fmt: skip
                        column.metric(name, f"{value:.3f}")

    with stats:
        if shown:
            with error_box():
                summary = statistics(root, shown)
                a, b, c = st.columns(3)
                a.metric("Samples", summary["count"])
                depth = summary["depth"]
                b.metric(
                    "Nearest surface (m)", "-" if depth["min"] is None else f"{depth['min']:.2f}"
                )
                c.metric(
                    "Farthest surface (m)", "-" if depth["max"] is None else f"{depth['max']:.2f}"
                )
                h1, h2 = st.columns(2)
                h1.subheader("Classes")
                h1.bar_chart(pd.Series(summary["classes"], name="samples"))
                h2.subheader("Difficulty")
                h2.bar_chart(
                    pd.Series(
                        summary["difficulty"]["counts"],
                        index=summary["difficulty"]["labels"],
                        name="samples",
                    )
                )
                if len(summary["conditions"]) > 1:
                    st.subheader("Conditions")
                    st.bar_chart(pd.Series(summary["conditions"], name="samples"))

    with paired:
        groups = find_paired(root)
        if not groups:
            st.info(
                "No paired condition sets under the data root (render with several conditions)."
            )
        else:
            group = st.selectbox("Paired set", groups, key="group")
            number = st.number_input("Sample", 0, 10**6, 0, key="paired_index")
            with error_box():
                images = paired_rgb(root, group, int(number))
                show_images({k: enlarge(v) for k, v in images.items()}, columns=len(images))
