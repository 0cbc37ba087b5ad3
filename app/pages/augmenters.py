"""Augmenters: a VAE, GAN or refiner checkpoint; samples per class, latent interpolation, and a
rendered sample before and after refining."""

import matplotlib.pyplot as plt
import streamlit as st
from common import data_root, error_box, pick_path, show_images

from workbench.inspect.augmenters import (
    interpolation,
    kind_of,
    load_augmenter,
    refine_image,
    sample_grid,
)
from workbench.inspect.datasets import find_datasets, load_sample, open_under
from workbench.inspect.preview import enlarge
from workbench.inspect.runs import find_checkpoints

root = data_root()
st.title("Augmenters")


@st.cache_resource(show_spinner="Loading the checkpoint...", max_entries=4)
def augmenter(path: str, stamp: float):
    return load_augmenter(root, path)


def show_figure(figure) -> None:
    st.pyplot(figure, clear_figure=True)
    plt.close(figure)


chosen = pick_path("Checkpoint", find_checkpoints(root), key="ckpt", help="a VAE, GAN or refiner")
module = None
if chosen:
    with error_box():
        module = augmenter(chosen, (root / chosen).stat().st_mtime)

if module is not None:
    kind = kind_of(module)
    st.caption(f"{kind} · classes: {', '.join(getattr(module, 'classes', [])) or '-'}")
    if kind in ("vae", "gan"):
        left, right = st.columns(2)
        with left:
            st.subheader("Samples per class")
            per_class = st.slider("Samples per class", 1, 16, 8, key="per_class")
            seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="seed")
            with error_box():
                show_figure(sample_grid(module, per_class, int(seed)))
        with right:
            st.subheader("Latent interpolation")
            label = st.selectbox(
                "Class", range(len(module.classes)), format_func=module.classes.__getitem__
            )
            steps = st.slider("Steps", 2, 16, 8, key="steps")
            with error_box():
                show_figure(interpolation(module, label, steps, int(seed)))
    else:
        st.subheader("A rendered sample before and after refining")
        datasets = [d.path for d in find_datasets(root) if not d.problem]
        folder = pick_path("Rendered dataset", datasets, key="refine_data")
        if folder:
            index = st.number_input("Sample", 0, 10**6, 0, key="refine_index")
            with error_box():
                rgb = load_sample(open_under(root, folder, ("rgb",)), int(index))["rgb"]
                show_images(
                    {"rendered": enlarge(rgb), "refined": enlarge(refine_image(module, rgb))},
                    columns=2,
                )
