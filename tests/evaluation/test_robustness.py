"""``workbench robustness`` end to end on a tiny digits model, resume, paired conditions,
gradient masking caught by the checks, and one clear message per bad input."""

import copy
import json

import pytest
import torch
from torch import nn

from tests.conftest import run_cli
from workbench.adversarial.threat import ThreatModel
from workbench.checkpoint import load_module
from workbench.cli import main
from workbench.data.sources import DigitsSource
from workbench.errors import WorkbenchError
from workbench.evaluation.cascade import cascade_stages, predict, run_cascade
from workbench.evaluation.data import load_eval_data
from workbench.evaluation.runner import Runner, make_settings

CHECKS = {
    "randomised",
    "softmax_output",
    "gradients_finite",
    "sweep_monotone",
    "chance_at_large_eps",
    "budget_stable",
    "whitebox_beats_blackbox",
    "reverified",
}
QUICK = ["--budget", "quick", "--n", "32", "--corruptions", "contrast,gaussian_noise", "--quiet"]


@pytest.fixture(scope="module")
def quick_report(tiny_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    done = run_cli("robustness", "--ckpt", str(tiny_ckpt), "--data", "digits", "--out", str(out),
                   *QUICK)  # fmt: skip
    return out, done.stdout


def test_report_fields_and_html(quick_report):
    out, stdout = quick_report
    assert stdout.strip().splitlines()[-1] == str(out / "report.html")
    report = json.loads((out / "report.json").read_text())
    assert report["n_examples"] == 32 and report["norm"] == "linf"
    assert report["eps"] == [0.05, 0.1, 0.2]
    assert report["clean_acc"] > 0.7
    assert set(report["robust_acc"]) == {"fgsm", "pgd"}
    for eps, worst in report["worst_case_acc"].items():
        # the worst case is per example over every attack, so no single attack beats it
        assert worst <= min(accs[eps] for accs in report["robust_acc"].values())
        assert [s["stage"] for s in report["cascade"][eps]] == [
            "apgd-ce",
            "apgd-dlr-t",
            "fab-t",
            "square",
        ]
    assert report["worst_case_acc"]["0.2"] < report["worst_case_acc"]["0.05"] < report["clean_acc"]
    assert set(report["corruptions"]) == {"contrast", "gaussian_noise"}
    assert report["corruptions"]["contrast"]["5"] < report["clean_acc"]
    assert report["cascade_preset"] == "standard" and report["cascade_notes"] == []
    assert report["cascade_stages"] == ["apgd-ce", "apgd-dlr-t", "fab-t", "square"]
    assert {c["name"] for c in report["checks"]} == CHECKS
    assert report["checks_passed"], [c for c in report["checks"] if c["status"] != "PASS"]
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3  # eps curves, examples, corruptions
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "PASS" in page and "reverified" in page


def test_rerun_resumes_from_saved_units(quick_report, tiny_ckpt, capsys):
    out, _ = quick_report
    units = {p: p.stat().st_mtime_ns for p in (out / "units").glob("*.pt")}
    before = json.loads((out / "report.json").read_text())
    args = ["robustness", "--ckpt", str(tiny_ckpt), "--data", "digits", "--out", str(out)]
    assert main([*args, *QUICK]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "units").glob("*.pt")} == units
    after = json.loads((out / "report.json").read_text())
    assert after["worst_case_acc"] == before["worst_case_acc"]
    assert after["checks"] == before["checks"]


def test_other_weights_in_the_same_folder_start_afresh(tiny_ckpt, tmp_path):
    model = load_module(tiny_ckpt, ["classifier"])
    data = load_eval_data("digits", image_size=8, channels=1, n=16)
    settings = make_settings(budget="quick", attacks=["fgsm"], eps=[0.1], corruptions=[])
    first = Runner(model, data.x, data.y, settings, out=tmp_path, progress=False).run()
    with torch.no_grad():
        model.head.weight.mul_(-1.0)  # a different model, saved to the same checkpoint path
    second = Runner(model, data.x, data.y, settings, out=tmp_path, progress=False).run()
    assert second.report["clean_acc"] != first.report["clean_acc"]


def test_paired_conditions_shift(tiny_ckpt, tmp_path):
    paired = tmp_path / "paired"
    run_cli("render", "digits", "--num", "6", "--resolution", "16", "--conditions", "clone,fog",
            "--workers", "1", "--quiet", "--out", str(paired))  # fmt: skip
    data = load_eval_data(str(paired), image_size=8, channels=1)
    assert data.reference == "clone" and set(data.conditions) == {"clone", "fog"}
    assert data.x.shape == (6, 1, 8, 8) and torch.equal(data.x, data.conditions["clone"])
    out = tmp_path / "out"
    assert main(["robustness", "--ckpt", str(tiny_ckpt), "--data", str(paired), "--out", str(out),
                 "--attacks", "fgsm", "--eps", "0.05,0.1", "--corruptions", "none", "--steps", "2",
                 "--quiet"]) == 0  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert set(report["conditions"]) == {"clone", "fog"}
    assert report["conditions"]["clone"]["agreement"] == 1.0
    assert report["reference_condition"] == "clone" and report["corruptions"] == {}


class Quantised(nn.Module):
    """Rounds its input to 5 grey levels before the model: zero input gradients everywhere."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model((x * 4).round() / 4)["logits"]


def test_checks_catch_gradient_masking(tiny_ckpt):
    model = load_module(tiny_ckpt, ["classifier"])
    data = load_eval_data("digits", 8, 1, n=32)
    settings = make_settings(budget="quick", n=32, corruptions=[])
    honest = Runner(model, data.x, data.y, settings, progress=False).run().report
    masked = Runner(Quantised(model), data.x, data.y, settings, progress=False).run().report
    status = {c["name"]: c["status"] for c in masked["checks"]}
    assert status["gradients_finite"] == "FAIL"
    assert status["whitebox_beats_blackbox"] == "FAIL"
    assert {c["name"]: c["status"] for c in honest["checks"]}["gradients_finite"] == "PASS"
    # the masked model looks more robust to the gradient attacks than the honest one
    assert masked["robust_acc"]["pgd"]["0.1"] > honest["robust_acc"]["pgd"]["0.1"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--attacks", "pgd,nope"], "--attacks: unknown attack 'nope'; known: apgd-ce, apgd-dlr"),
        (["--eps", "0.1,1.5"], "--eps: for linf must be in (0, 1], got 1.5"),
        (["--eps", "0"], "--eps: for linf must be in (0, 1], got 0"),
        (["--n", "0"], "--n: must be a positive integer, got 0"),
        (["--attacks", "cw"], "--attacks: cw supports l2, not linf"),
        (["--batch-size", "0"], "--batch-size: must be a positive integer, got 0"),
        (["--data", "/no/such/folder"], "--data: '/no/such/folder' is neither 'digits'"),
        (["--device", "nonsense"], "--device nonsense: not usable here"),
    ],
)
def test_bad_cli_input_is_one_line(tiny_ckpt, tmp_path, capsys, extra, message):
    args = ["robustness", "--ckpt", str(tiny_ckpt), "--data", "digits", "--out", str(tmp_path)]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert message in err


@pytest.mark.parametrize(
    "options, message",
    [
        ({"eps": [0.1, 1.5]}, "eps: for linf must be in (0, 1], got 1.5"),
        ({"batch_size": 0}, "batch_size: must be a positive integer, got 0"),
        ({"attacks": ["cw"]}, "attacks: cw supports l2, not linf"),
        ({"budget": "huge"}, "budget: unknown 'huge'; allowed: quick, standard"),
    ],
)
def test_bad_settings_name_the_parameter(options, message):
    # the library's own vocabulary; the CLI names the flags (test_bad_cli_input_is_one_line)
    with pytest.raises(WorkbenchError) as error:
        make_settings(**options)
    assert str(error.value) == message


def test_bad_batches_are_refused(tiny_ckpt):
    model = load_module(tiny_ckpt, ["classifier"])
    source = DigitsSource("test")
    x = torch.stack([torch.from_numpy(source[i]["image"]).permute(2, 0, 1) for i in range(4)])
    y = torch.from_numpy(source.labels()[:4])
    settings = make_settings(budget="quick", corruptions=[])
    with pytest.raises(WorkbenchError, match=r"x: images must be in \[0, 1\]"):
        Runner(model, x * 16, y, settings, progress=False)
    with pytest.raises(WorkbenchError, match="y: need one label per image"):
        Runner(model, x, y[:3], settings, progress=False)
    with pytest.raises(WorkbenchError, match=r"y: labels must be in \[0, 9\]"):
        Runner(model, x, y + 10, settings, progress=False)


class BatchNormNet(nn.Module):
    """conv-batchnorm-ReLU-linear whose running statistics are far from any batch's."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                  nn.Flatten(), nn.Dropout(0.5), nn.Linear(256, 10))  # fmt: skip
        self.body[1].running_mean.fill_(0.3)
        self.body[1].running_var.fill_(0.05)

    def forward(self, x):
        return self.body(x)


def training_model_and_data():
    """A BatchNormNet in training mode (one submodule in eval mode: mixed modes must come back
    exactly), its eval-mode twin, images and the twin's labels; train mode would answer
    otherwise."""
    model = BatchNormNet().train()
    model.body[2].eval()
    twin = copy.deepcopy(model).eval()
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = twin(x).argmax(1)
        assert not torch.equal(copy.deepcopy(model)(x).argmax(1), y)
    return model, twin, x, y


def unchanged(model, modes, state):
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert all(p.requires_grad for p in model.parameters())
    for key, value in model.state_dict().items():  # running statistics and batch counter
        assert torch.equal(value, state[key]), key


def test_cascade_and_predict_use_eval_mode_and_leave_the_model_as_it_was():
    model, twin, x, y = training_model_and_data()
    modes = {n: m.training for n, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert torch.equal(predict(model, x, 8), y)
    unchanged(model, modes, state)
    threat = ThreatModel("linf", 0.05)
    stages = cascade_stages("standard", steps=5, queries=20)
    got = run_cascade(model, x, y, threat, stages, batch_size=8)
    want = run_cascade(twin, x, y, threat, stages, batch_size=8)
    assert torch.equal(got.robust, want.robust) and torch.equal(got.x_adv, want.x_adv)
    assert got.broken_by == want.broken_by and 0 < got.accuracy < 1
    unchanged(model, modes, state)


def test_runner_uses_eval_mode_and_leaves_the_model_as_it_was():
    model, twin, x, y = training_model_and_data()
    modes = {n: m.training for n, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    settings = make_settings(budget="quick", eps=[0.05], corruptions=["contrast"])
    got = Runner(model, x, y, settings, progress=False).run().report
    unchanged(model, modes, state)
    want = Runner(twin, x, y, settings, progress=False).run().report
    for key in ("clean_acc", "robust_acc", "worst_case_acc", "corruptions"):
        assert got[key] == want[key], key
    assert [c["value"] for c in got["checks"]] == [c["value"] for c in want["checks"]]
