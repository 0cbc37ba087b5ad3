"""Generate: edit a scene spec, preview one sample live, render a dataset in the background.

Previews go through preview workers shared by every browser tab (bounded wait, timeout); renders
are jobs of the app's registry, so every tab sees them and no two write into one folder."""

import streamlit as st
import yaml
from common import data_root, error_box, show_images

from workbench.inspect.jobs import JobRegistry
from workbench.inspect.preview import (
    MAX_RESOLUTION,
    MAX_SAMPLES,
    MAX_WORKERS,
    PreviewRenderer,
    apply_overrides,
    find_specs,
    range_fields,
    render_jobs,
    sample_views,
    start_render,
)
from workbench.scene.conditions import CONDITIONS
from workbench.scene.spec import load_spec, parse_spec

root = data_root()
st.title("Generate")


@st.cache_resource(show_spinner=False)
def preview_renderer(root: str) -> PreviewRenderer:
    return PreviewRenderer(root)


@st.cache_data(show_spinner=False, max_entries=64)
def render_preview(spec_yaml: str, seed: int, index: int, condition: str):
    spec = parse_spec(yaml.safe_load(spec_yaml), "edited spec")
    sample = preview_renderer(str(root)).render(spec, seed, index, condition)
    return sample.arrays, sample.meta


specs = find_specs(root)
controls, preview = st.columns([1, 2])
with controls:
    label = st.selectbox("Scene spec", list(specs), key="spec")
    spec = None
    with error_box():
        spec = load_spec(specs[label])
    if spec is not None:
        seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="seed")
        index = st.number_input("Sample index", 0, 10**6, 0, key="index")
        condition = st.selectbox("Condition", CONDITIONS.names(), key="condition")
        own = min(spec.resolution, MAX_RESOLUTION)
        resolution = st.select_slider(
            "Resolution",
            sorted({16, 32, 48, 64, 96, 128, 192, 256, MAX_RESOLUTION, own}),
            own,
            key=f"{label}:resolution",
        )
        overrides: dict = {"resolution": resolution}
        with st.expander("Randomization ranges"):
            for field in range_fields(spec):
                cast = int if field.integer else float
                value = st.slider(
                    field.key,
                    cast(field.bounds[0]),
                    cast(field.bounds[1]),
                    (cast(field.low), cast(field.high)),
                    step=cast(field.step),
                    key=f"{label}:{field.key}",
                )
                if value != (cast(field.low), cast(field.high)):
                    overrides[field.key] = value
        edited = None
        with error_box():
            edited = apply_overrides(spec, overrides)

with preview:
    if spec is not None and edited is not None:
        spec_yaml = yaml.safe_dump(edited.model_dump(mode="json"))
        sample = None
        with error_box(), st.spinner("Rendering the preview..."):
            sample = render_preview(spec_yaml, int(seed), int(index), condition)
        if sample is not None:
            arrays, meta = sample
            show_images(sample_views(arrays, meta), columns=6)
            st.caption(
                f"label: {meta['label_name']}  ·  difficulty: {meta['difficulty']:.3f}  ·  "
                f"objects: {len(meta['objects'])}"
            )
            with st.expander("Sample factors"):
                st.json(meta["factors"], expanded=False)

st.header("Render a dataset")
if spec is not None and edited is not None:
    left, right = st.columns(2)
    out = left.text_input(
        "Output folder (under the data root)", f"datasets/{edited.name}", key="out"
    )
    num = left.number_input("Samples per condition", 1, MAX_SAMPLES, 100, key="num")
    workers = right.number_input("Render processes", 1, MAX_WORKERS, 1, key="workers")
    conditions = right.multiselect(
        "Conditions", CONDITIONS.names(), default=list(edited.conditions), key="conditions"
    )
    detached = st.checkbox("Keep running after the app stops", key="render_detached")
    if st.button("Render dataset", type="primary", key="render_start"):
        with error_box():
            start_render(
                root, edited, out, int(num), int(seed), conditions or None, int(workers),
                detached=detached,
            )  # fmt: skip


@st.fragment(run_every=1.0)
def render_progress() -> None:
    registry = JobRegistry(root)
    for task in render_jobs(root)[:5]:
        job = task.record
        where = ", ".join(f"`{f}`" for f in job.info["folders"])
        st.progress(task.progress(), text=f"{where}: {task.done()} / {task.total} ({job.status})")
        if job.running:
            if st.button("Cancel render", key=f"cancel_{job.id}"):
                registry.stop(job.id)
                st.rerun()
            continue
        if job.status == "finished":
            st.success(f"Done: {where}")
        elif job.status in ("stopped", "ended"):
            st.warning(
                f"Stopped ({job.reason or job.status}); render into the same folder again to "
                "resume where it stopped."
            )
        else:
            st.error(f"The render failed:\n\n```\n{job.tail(8)}\n```")
        if st.button("Clear", key=f"clear_{job.id}"):
            registry.forget(job.id)
            st.rerun()


render_progress()
