"""benchmarks/gpu_check.py runs its CPU parts (skipping the CUDA ones, saying so) in CI."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from tests.conftest import REPO


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" /
                                                  "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU mode; on CUDA run it in full")
def test_quick_cpu_mode_skips_cuda_and_ends_with_one_key_value_line(capsys):
    result = load_gpu_check().main(["--quick"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert any("no CUDA device: skipping the CUDA parts" in line for line in lines)
    last = dict(kv.split("=", 1) for kv in lines[-1].split())
    assert last == result
    assert last["device"] == "cpu" and last["sync"] == "skipped"
    for tag in ("fp32_learner_vs_plain_bs64", "fp32_telemetry_vs_learner_bs512",
                "bf16_telemetry_vs_learner_bs64"):
        assert float(last[tag]) > 0
