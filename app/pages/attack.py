"""Attack lab: a classifier, one image (natural digit, dataset sample or upload), an attack and
its budget; the original, the amplified perturbation and the adversarial with predictions. A
dense checkpoint is attacked on a rendered sample (PGD or APGD on the per-pixel loss) and shows
the clean and attacked predictions beside the truth."""

import pandas as pd
import streamlit as st
from common import data_root, error_box, pick_path, show_images, to_uint8

from workbench.imageio import UPLOAD_MAX_MB
from workbench.inspect.attacklab import (
    MAX_EPS,
    MAX_QUERIES,
    MAX_RESTARTS,
    MAX_STEPS,
    attack_budget,
    attack_names,
    attack_restarts,
    class_names,
    is_dense,
    load_attack_target,
    model_input,
    read_upload,
    run_attack,
)
from workbench.inspect.datasets import find_datasets, load_sample, open_under
from workbench.inspect.dense import DENSE_ATTACKS, run_dense_attack
from workbench.inspect.preview import enlarge
from workbench.inspect.runs import find_checkpoints

root = data_root()
st.title("Attack lab")


@st.cache_resource(show_spinner="Loading the model...", max_entries=4)
def attack_target(path: str, stamp: float):
    return load_attack_target(root, path)


@st.cache_resource(show_spinner=False)
def natural_digits():
    from workbench.data.sources import DigitsSource

    return DigitsSource("test")


def dense_lab(model) -> None:
    """The lab for a dense model: a rendered sample, PGD or APGD on the per-pixel loss."""
    folder = pick_path("Dataset", [d.path for d in find_datasets(root) if not d.problem], "ds")
    index = st.number_input("Sample", 0, 10**6, 0, key="ds_index")
    left, middle, right = st.columns(3)
    attack = left.selectbox("Attack", DENSE_ATTACKS, key="dense_attack")
    heads = [h for h, on in (("seg", model.segments), ("depth", model.depths)) if on]
    head = middle.selectbox("Output attacked", heads, key="head")
    eps = right.number_input("Epsilon (linf)", 0.0, 1.0, 8 / 255, format="%.4f", key="eps")
    steps = left.number_input("Steps", 1, MAX_STEPS, 20, key="steps")
    seed = middle.number_input("Seed", 0, 2**31 - 1, 0, key="seed")
    restarts = right.number_input("Restarts", 1, MAX_RESTARTS, 1, key="restarts")
    if folder and st.button("Attack", type="primary", key="run_attack"):
        with error_box(), st.spinner("Attacking..."):
            dataset = open_under(root, folder)
            sample = load_sample(dataset, int(index))
            st.session_state["dense_outcome"] = run_dense_attack(
                model, sample, dataset.classes, attack=attack, head=head, eps=eps,
                steps=int(steps), restarts=int(restarts), seed=int(seed))  # fmt: skip
    outcome = st.session_state.get("dense_outcome")
    if outcome is not None:
        show_images(outcome.views, columns=3)
        for column, name in zip(st.columns(len(outcome.clean)), outcome.clean, strict=True):
            delta = outcome.attacked[name] - outcome.clean[name]
            column.metric(f"{name} attacked", f"{outcome.attacked[name]:.3f}", f"{delta:+.3f}")


chosen = pick_path("Checkpoint (classifier or dense)", find_checkpoints(root), key="ckpt")
model = None
if chosen:
    with error_box():
        model = attack_target(chosen, (root / chosen).stat().st_mtime)

if model is not None and is_dense(model):
    dense_lab(model)
elif model is not None:
    names = class_names(model)
    image, label = None, None
    source = st.radio(
        "Image", ["natural digit", "dataset sample", "upload"], horizontal=True, key="source"
    )
    if source == "natural digit":
        digits = natural_digits()
        index = st.number_input(f"Test digit (0-{len(digits) - 1})", 0, len(digits) - 1, 0)
        item = digits[int(index)]
        image, label = item["image"], item["label"]
    elif source == "dataset sample":
        folder = pick_path("Dataset", [d.path for d in find_datasets(root) if not d.problem], "ds")
        if folder:
            index = st.number_input("Sample", 0, 10**6, 0, key="ds_index")
            with error_box():
                sample = load_sample(open_under(root, folder, ("rgb",)), int(index))
                image, label = sample["rgb"], sample["meta"]["label"]
    else:
        upload = st.file_uploader(
            f"Image file (PNG or JPEG, at most {UPLOAD_MAX_MB} MB)",
            type=["png", "jpg", "jpeg"],
            key="upload",
            max_upload_size=UPLOAD_MAX_MB,
        )
        if upload is not None:
            with error_box():
                image = read_upload(upload.getvalue(), upload.name)
            if image is not None:
                label = st.selectbox("True class", range(len(names)), format_func=names.__getitem__)

    left, middle, right = st.columns(3)
    norm = left.radio("Norm", ["linf", "l2"], horizontal=True, key="norm")
    attacks = attack_names(norm)
    attack = middle.selectbox(
        "Attack", attacks, index=attacks.index("pgd") if "pgd" in attacks else 0, key="attack"
    )
    eps = right.number_input(
        "Epsilon", 0.0, MAX_EPS, 8 / 255 if norm == "linf" else 0.5, format="%.4f", key="eps"
    )
    budget = attack_budget(attack)
    steps = None
    if budget:
        most = MAX_QUERIES if budget[0] == "queries" else MAX_STEPS
        steps = left.number_input(budget[0].capitalize(), 1, most, budget[1], key="steps")
    seed = middle.number_input("Seed", 0, 2**31 - 1, 0, key="seed")
    restarts = None
    if attack_restarts(attack) is not None:
        restarts = right.number_input(
            "Restarts", 1, MAX_RESTARTS, attack_restarts(attack), key="restarts"
        )

    if image is not None and st.button("Attack", type="primary", key="run_attack"):
        with error_box(), st.spinner("Attacking..."):
            x = model_input(model, image)
            st.session_state["outcome"] = (
                run_attack(model, x, int(label), attack, norm, eps, steps, int(seed), restarts),
                int(label),
            )
    if "outcome" in st.session_state:
        outcome, label = st.session_state["outcome"]
        clean, adv = outcome.clean_probs, outcome.adversarial_probs

        def verdict(probs) -> str:
            return f"{names[probs.argmax()]} ({probs.max():.0%})"

        show_images(
            {
                f"original: {verdict(clean)} (true {names[label]})": enlarge(
                    to_uint8(outcome.clean)
                ),
                "perturbation (amplified)": enlarge(to_uint8(outcome.perturbation)),
                f"adversarial: {verdict(adv)}": enlarge(to_uint8(outcome.adversarial)),
            },
            columns=3,
        )
        cols = st.columns(4)
        for col, key in zip(cols, ("ssim", "l0", "l2", "linf"), strict=True):
            col.metric(key.upper() if key != "ssim" else "SSIM", f"{outcome.stats[key]:.4g}")
        st.bar_chart(pd.DataFrame({"clean": clean, "adversarial": adv}, index=names), stack=False)
