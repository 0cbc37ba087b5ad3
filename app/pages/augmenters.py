"""Augmenters: a VAE, GAN, diffusion or refiner checkpoint; samples per class, latent
interpolation or the denoising path, and a rendered sample before and after refining (SimGAN, or
SDEdit with a diffusion model)."""

import matplotlib.pyplot as plt
import streamlit as st
from common import data_root, error_box, pick_path, show_images

from workbench.inspect.augmenters import (
    denoising,
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


chosen = pick_path(
    "Checkpoint", find_checkpoints(root), key="ckpt", help="a VAE, GAN, diffusion model or refiner"
)
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
    if kind == "diffusion":
        left, right = st.columns(2)
        with left:
            st.subheader("Samples per class")
            per_class = st.slider("Samples per class", 1, 16, 8, key="per_class")
            seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="seed")
            hp = module.hparams
            most = min(100, int(hp.train_steps))
            steps = st.slider(
                "DDIM steps", 1, most, min(most, int(hp.sample_steps)), key="ddim_steps"
            )
            guidance = st.slider(
                "Guidance scale", 0.0, 8.0, min(8.0, float(hp.guidance_scale)), 0.5, key="guidance"
            )
            with error_box():
                show_figure(sample_grid(module, per_class, int(seed), steps, guidance))
        with right:
            st.subheader("Denoising path")
            with error_box():
                show_figure(denoising(module, int(seed)))
    if kind in ("refiner", "diffusion"):
        st.subheader("A rendered sample before and after refining")
        datasets = [d.path for d in find_datasets(root) if not d.problem]
        folder = pick_path("Rendered dataset", datasets, key="refine_data")
        if folder:
            index = st.number_input("Sample", 0, 10**6, 0, key="refine_index")
            strength = None
            if kind == "diffusion":
                strength = st.slider("SDEdit strength", 0.05, 1.0, 0.3, 0.05, key="strength")
            with error_box():
                rgb = load_sample(open_under(root, folder, ("rgb",)), int(index))["rgb"]
                refined = refine_image(module, rgb, strength)
                show_images({"rendered": enlarge(rgb), "refined": enlarge(refined)}, columns=2)
