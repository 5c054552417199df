"""Issue 10, families 10 and 11: values that overflow or make no sense, and a last batch of one.

Family 10: every case is one line, exit 2, nothing written, and comes before any training; most
come before any data is loaded (the data folder is missing there). Cases that need the model's
shapes (memory) use the offline digits dataset. Family 11: ``--limit N`` with ``N % bs == 1``
(here the digits' 1,433 training images at bs 8 = 179 * 8 + 1) trains to the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from actscope.cli import main
from actscope.config import FitConfig
from actscope.errors import UsageError
from actscope.recipe import check_dry_forward, estimate_fit_bytes
from tests.helpers import one_error_line, tree_snapshot

DIGITS = ["--dataset", "digits"]
# (command and flags, the text the one error line must hold)
CASES = {
    "lr_1e308": (["fit", "--lr", "1e308"], "--lr"),
    "lr_above_max": (["fit", "--lr", "2e6"], "(0, 1e+06]"),
    "lr_inf": (["fit", "--lr", "inf"], "--lr"),
    "act_1e308": (["fit", "--act", "1e308,1e308,1e308"], "--act"),
    "act_one_huge": (["fit", "--act", "0.1,0.4,1e9"], "overflow"),
    "act_negative_huge": (["fit", "--act=-1e7,none,6"], "within ±1e+06"),
    "wd_negative": (["fit", "--wd", "-1"], "--wd"),
    "wd_huge": (["fit", "--wd", "1e300"], "--wd"),
    "wd_nan": (["fit", "--wd", "nan"], "--wd"),
    "momentum_one": (["fit", "--momentum", "1"], "--momentum"),
    "momentum_negative": (["fit", "--momentum", "-0.1"], "--momentum"),
    "momentum_text": (["fit", "--momentum", "lots"], "--momentum"),
    "momentum_cycle_above_one": (["fit", "--momentum", "0.99"], "below 1"),
    "opt_unknown": (["fit", "--opt", "lion"], "--opt"),
    "seed_negative": (["fit", "--seed", "-1"], "--seed"),
    "device_meta": (["fit", "--device", "meta"], "meta"),
    "device_xla": (["fit", "--device", "xla"], "--device"),
    "device_cuda_index": (["fit", "--device", "cuda:99"], "cuda:99"),
    "device_mps": (["fit", "--device", "mps"], "mps"),
    "device_garbage": (["fit", "--device", "cpu:x"], "--device"),
    "nproc_huge": (["fit", "--nproc", "100000"], "--nproc 100000"),
    "nproc_zero": (["fit", "--nproc", "0"], "--nproc"),
    "nfs_999999": (["fit", *DIGITS, "--nfs", "999999"], "GiB"),
    "nfs_wide_and_deep": (["fit", *DIGITS, "--nfs", "8,200000,200000"], "--nfs"),
    "bs_huge_memory": (["fit", *DIGITS, "--nfs", "4096,4096", "--bs", "100000"], "--bs"),
    "lr_find_num_it_4": (["lr-find", "--num-it", "4"], "--num-it"),
    "lr_find_num_it_1": (["lr-find", "--num-it", "1"], "at least 5"),
    "lr_find_min_above_max": (["lr-find", "--min-lr", "1", "--max-lr", "0.1"], "--min-lr"),
    "lr_find_max_lr_1e308": (["lr-find", "--max-lr", "1e308"], "--max-lr"),
    "lr_find_device_meta": (["lr-find", "--device", "meta"], "meta"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_value_one_line_exit_2(case: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACTSCOPE_DATA", str(tmp_path / "no-data"))
    args, needle = CASES[case]
    if "--device" in args and args[args.index("--device") + 1].startswith(("cuda", "mps")):
        if torch.cuda.is_available() or torch.backends.mps.is_available():
            pytest.skip("this machine has the device; the case is for one that does not")
    before = tree_snapshot(tmp_path)
    code = main([*args, "--limit", "64", "--out", str(tmp_path / "out")])
    one_error_line(capsys.readouterr().err, needle)
    assert code == 2 and tree_snapshot(tmp_path) == before


def test_the_memory_estimate_counts_weights_and_activations() -> None:
    small = estimate_fit_bytes(FitConfig(), (1, 28, 28))
    assert 1e6 < small < 1e8  # the recipe: ~5 MiB
    wide = estimate_fit_bytes(FitConfig(nfs=(999999,)), (1, 28, 28))
    assert wide > 2**38  # 25M weights and a (64, 999999, 14, 14) activation: hundreds of GiB
    assert estimate_fit_bytes(FitConfig(bs=128), (1, 28, 28)) > small  # activations grow with bs


def test_a_non_finite_dry_forward_is_refused() -> None:
    class Blowup(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1) * float("inf")

    with pytest.raises(UsageError, match="not finite"):
        check_dry_forward(Blowup(), torch.ones(2, 1, 8, 8), FitConfig())


@pytest.mark.parametrize("bs", [8, 4])  # 1,433 = 179 * 8 + 1 = 358 * 4 + 1
def test_last_training_batch_of_one_is_dropped_not_fatal(bs: int, tmp_path: Path,
                                                         capsys) -> None:
    from actscope.runs import RunFolder

    out = tmp_path / "run"
    code = main(["fit", *DIGITS, "--bs", str(bs), "--epochs", "1", "--no-progress",
                 "--no-telemetry", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    with __import__("numpy").load(out / "recorder.npz") as z:
        assert len(z["losses"]) == 1433 // bs  # the lone last image is skipped, not trained
    assert RunFolder(out).read_metrics_csv()[0]["valid_accuracy"] > 0.2
