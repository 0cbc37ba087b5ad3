"""Training benchmark, side by side in one run; prints ratios and writes JSON.

* ``workbench fit`` (the Lightning CLI's trainer, model and DataModule from
  ``configs/classifier_digits.yaml``) against a bare PyTorch loop on the same model, data
  loader and batch size: training samples/s over the same number of epochs, validation off;
* the mixed DataModule's loader against in-memory tensors in the same bare loop;
* gradient checkpointing: activation memory saved for backward, and step time, with and
  without.

Each target is one measurement, decided by its value (``workbench.experiments.stats``); the
JSON carries a ``provenance`` block (commit, command, host, versions, threads).

Usage: python benchmarks/bench_training.py --out bench_out [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from workbench.experiments import stats
from workbench.experiments.provenance import Recorder
from workbench.models import saved_activation_bytes
from workbench.training.classifier import Classifier
from workbench.training.lightning_cli import build

ROOT = Path(__file__).resolve().parent.parent
SOURCES = '[{"kind": "digits", "name": "natural"}]'
FIT_TARGET, OVERHEAD_TARGET = 0.9, 0.10


class EpochTimer(pl.Callback):
    """Wall time of training epochs only (validation excluded)."""

    def __init__(self):
        self.seconds, self.samples = 0.0, 0

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.seconds += time.perf_counter() - self._start
        self.samples += len(trainer.train_dataloader.sampler)


def _cli(epochs: int, out: Path):
    return build(["-c", str(ROOT / "configs/classifier_digits.yaml"),
                  "--trainer.max_epochs", str(epochs),
                  "--trainer.default_root_dir", str(out / "runs"),
                  "--trainer.limit_val_batches", "0",
                  "--trainer.enable_progress_bar", "false", "--data.init_args.sources", SOURCES,
                  "--data.init_args.augment", "null"], run_name="bench_fit")  # fmt: skip


def bare_loop(model: Classifier, batches, epochs: int, make_epoch) -> float:
    """Plain PyTorch: forward, loss, backward, AdamW step. Returns samples/s."""
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=model.hparams.lr, weight_decay=model.hparams.weight_decay
    )
    model.train()
    samples, start = 0, time.perf_counter()
    for epoch in range(epochs):
        for batch in make_epoch(epoch):
            loss = model.cls_loss(model(batch["image"])["logits"], batch["label"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            samples += len(batch["label"])
    return samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    recorder = Recorder(seeds={"seed_everything": 0, "tensor_epochs": "epoch number"})
    out = Path(args.out)
    torch.set_num_threads(torch.get_num_threads())
    results: dict = {"torch_threads": torch.get_num_threads()}

    cli = _cli(args.epochs, out)
    timer = EpochTimer()
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, cli.datamodule)
    fit_rate = timer.samples / timer.seconds

    bare = _cli(args.epochs, out)
    bare.datamodule.setup("fit")
    loader = bare.datamodule.train_dataloader()

    def loader_epoch(epoch):
        loader.sampler.set_epoch(epoch)
        return loader

    dataset = bare.datamodule.datasets["train"]
    images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    labels = torch.stack([dataset[i]["label"] for i in range(len(dataset))])
    batch_size, count = loader.batch_size, len(loader.sampler)

    def tensor_epoch(epoch):
        order = torch.randint(len(labels), (count,), generator=torch.Generator().manual_seed(epoch))
        for start in range(0, count, batch_size):
            index = order[start : start + batch_size]
            yield {"image": images[index], "label": labels[index]}

    # alternate the two bare loops twice and keep each one's best, so warm-up and load on a
    # shared machine do not favour either
    bare_rate = tensor_rate = 0.0
    for _ in range(2):
        bare_rate = max(
            bare_rate, bare_loop(_cli(args.epochs, out).model, loader, args.epochs, loader_epoch)
        )
        tensor_rate = max(
            tensor_rate, bare_loop(_cli(args.epochs, out).model, None, args.epochs, tensor_epoch)
        )
    results["fit_vs_bare"] = {
        "fit_samples_per_s": fit_rate,
        "bare_samples_per_s": bare_rate,
        "ratio": fit_rate / bare_rate,
    }
    print(
        f"workbench fit {fit_rate:.0f} samples/s, bare PyTorch loop {bare_rate:.0f} samples/s: "
        f"ratio {fit_rate / bare_rate:.3f} (target >= 0.9)"
    )
    overhead = tensor_rate / bare_rate - 1
    results["datamodule_vs_tensors"] = {
        "datamodule_samples_per_s": bare_rate,
        "tensors_samples_per_s": tensor_rate,
        "overhead": overhead,
    }
    print(
        f"bare loop on the mixed DataModule {bare_rate:.0f}/s "
        f"vs in-memory tensors {tensor_rate:.0f}/s: "
        f"overhead {100 * overhead:.1f}% (target <= 10%)"
    )

    x = torch.rand(64, 1, 32, 32)
    rows = {}
    for flag in (False, True):
        model = Classifier(
            backbone="resnet", backbone_options={"depth": 6, "width": 32, "checkpointing": flag}
        )
        model.train()
        activation = saved_activation_bytes(model.backbone, x)
        start = time.perf_counter()
        for _ in range(5):
            model.cls_loss(model(x)["logits"], torch.zeros(64, dtype=torch.long)).backward()
        rows[str(flag)] = {
            "activation_bytes": activation,
            "step_s": (time.perf_counter() - start) / 5,
        }
    saving = 1 - rows["True"]["activation_bytes"] / rows["False"]["activation_bytes"]
    slowdown = rows["True"]["step_s"] / rows["False"]["step_s"]
    results["checkpointing"] = {**rows, "memory_saved": saving, "time_ratio": slowdown}
    print(
        f"gradient checkpointing (resnet depth 6, batch 64, 32 px): activations "
        f"{rows['False']['activation_bytes'] / 2**20:.1f} -> "
        f"{rows['True']['activation_bytes'] / 2**20:.1f} MiB "
        f"({100 * saving:.0f}% saved), step time x{slowdown:.2f}"
    )

    results["targets"] = targets(results)
    results["provenance"] = recorder.block()
    out.mkdir(parents=True, exist_ok=True)
    (out / "training.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {out / 'training.json'}")


def targets(results: dict) -> list[dict]:
    """``workbench fit`` at least 0.9 of the bare loop's rate; the DataModule's overhead over
    in-memory tensors at most 10%; each one measurement, decided by its value."""
    fit = results["fit_vs_bare"]["ratio"]
    overhead = results["datamodule_vs_tensors"]["overhead"]
    return [
        {"name": "fit / bare loop", "difference": False, **stats.decide([fit], FIT_TARGET)},
        {"name": "DataModule overhead", "difference": False,
         **stats.decide([overhead], OVERHEAD_TARGET, "<=")},
    ]  # fmt: skip


def markdown(results: dict) -> str:
    """The README's training table, from ``training.json``."""
    fit, data = results["fit_vs_bare"], results["datamodule_vs_tensors"]
    ckpt = results["checkpointing"]
    decided = {t["name"]: t for t in targets(results)}
    mib = {flag: ckpt[flag]["activation_bytes"] / 2**20 for flag in ("False", "True")}
    rows = [
        "| anchor | result | target | decision |",
        "|---|---|---|---|",
        (
            "| `workbench fit` (Lightning trainer) against a bare PyTorch loop on the same "
            f"model, loader and batch size | {fit['fit_samples_per_s']:.0f} vs "
            f"{fit['bare_samples_per_s']:.0f} samples/s: **{fit['ratio']:.2f}** | "
            f">= {FIT_TARGET} | {stats.verdict(decided['fit / bare loop'])} |"
        ),
        (
            "| the mixed DataModule against in-memory tensors, same bare loop | "
            f"{data['datamodule_samples_per_s']:.0f} vs {data['tensors_samples_per_s']:.0f} "
            f"samples/s: **{100 * data['overhead']:+.1f}% overhead** | "
            f"<= {100 * OVERHEAD_TARGET:.0f}% | {stats.verdict(decided['DataModule overhead'])} |"
        ),
        (
            "| gradient checkpointing (`resnet` depth 6, batch 64) | activations saved for "
            f"backward {mib['False']:.0f} -> {mib['True']:.0f} MiB "
            f"(**{100 * ckpt['memory_saved']:.0f}% less**), "
            f"step time x{ckpt['time_ratio']:.2f} | measured | |"
        ),
        "",
        f"torch threads: {results['torch_threads']}. Decisions: {stats.RULE_POINT}.",
    ]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    main()
