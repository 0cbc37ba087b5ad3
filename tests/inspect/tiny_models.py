"""Tiny checkpoints and a tiny robustness report for the app and inspect tests (seconds on a CPU).

Checkpoints hold what a Lightning checkpoint of a workbench module holds for loading: the
``state_dict``, the ``hyper_parameters`` and the ``workbench_kind`` mark.
"""

from __future__ import annotations

from pathlib import Path

import torch


def save_module(module: torch.nn.Module, kind: str, path: Path) -> Path:
    """Writes ``module`` as a checkpoint of ``kind`` that ``load_module`` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
         "workbench_kind": kind},
        path,
    )  # fmt: skip
    return path


def make_checkpoints(folder: Path) -> dict[str, Path]:
    """Writes an untrained classifier (10 digits, grey 8 px), VAE, GAN and diffusion model (3
    classes, 8 px), a refiner (grey 8 px, identity at initialisation) and a dense model
    (segmentation and depth of the digits scene, RGB 16 px)."""
    from workbench.generative.diffusion import ConditionalDiffusion
    from workbench.generative.gan import ConditionalGAN
    from workbench.generative.refiner import Refiner
    from workbench.generative.vae import ConditionalVAE
    from workbench.training.classifier import Classifier
    from workbench.training.dense import DenseModule

    torch.manual_seed(0)
    small = {"num_classes": 3, "in_channels": 1, "image_size": 8, "class_names": ["a", "b", "c"]}
    modules = {
        "classifier": Classifier(
            num_classes=10, in_channels=1, image_size=8, backbone="small_cnn",
            backbone_options={"width": 4, "depth": 1},
        ),
        "vae": ConditionalVAE(**small, latent_dim=2, width=4),
        "gan": ConditionalGAN(**small, latent_dim=2, width=4),
        "diffusion": ConditionalDiffusion(
            **small, widths=[8, 8], attention=False, train_steps=20, sample_steps=4
        ),
        "refiner": Refiner(in_channels=1, image_size=8, width=4, blocks=1, disc_width=4),
        "dense": DenseModule(
            num_classes=10, in_channels=3, image_size=16, task="both",
            class_names=[str(i) for i in range(10)], backbone="unet",
            backbone_options={"width": 4, "depth": 2}, overlays=0,
        ),
    }  # fmt: skip
    return {kind: save_module(m, kind, folder / f"{kind}.ckpt") for kind, m in modules.items()}


def make_report(checkpoint: Path, out: Path) -> Path:
    """Evaluates ``checkpoint`` on 16 natural digits with FGSM at two radii and one corruption;
    returns the report folder."""
    from workbench.evaluation.runner import evaluate_checkpoint, make_settings

    settings = make_settings(
        eps=[0.05, 0.1], attacks=["fgsm"], budget="quick", n=16, steps=2, restarts=1,
        corruptions=["gaussian_noise"],
    )  # fmt: skip
    evaluate_checkpoint(checkpoint, "digits", out, settings, progress=False)
    return out


def make_dense_report(checkpoint: Path, data: Path, out: Path) -> Path:
    """Evaluates a dense ``checkpoint`` on 4 rendered samples of ``data`` with both dense attacks
    at one radius (one step) and one depth-aware corruption; returns the report folder."""
    from workbench.evaluation.dense_runner import DenseRobustnessOptions, evaluate_dense_checkpoint

    settings = DenseRobustnessOptions(
        budget="quick", eps=[0.03], n=4, steps=1, corruptions=["fog_3d"]
    ).settings()
    evaluate_dense_checkpoint(checkpoint, str(data), out, settings, progress=False)
    return out
