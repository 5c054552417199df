"""Bad input that used to end in a traceback (or a crash) and is now one line, exit 2.

Seeds past numpy's 2**32 - 1, ``--bs 1`` with batch norm, LSUV on an activation with a constant
output, a path with a name over 255 bytes or a link loop, ``norms --threads`` past the cores, a
config.json whose on/off setting is not a JSON boolean, or whose epochs were edited after the run
started. Each case: one line ``actscope: error: ...``, exit code 2, nothing written.
"""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path

import pytest
import torch

from actscope.cli import build_parser, main
from actscope.cli.flags import max_threads
from actscope.config import FitConfig
from actscope.errors import ActscopeError, UsageError
from actscope.nn.cnn import cnn
from actscope.nn.init import InitError, init_cnn, lsuv_init
from actscope.nn.layers import GeneralRelu
from actscope.recipe import build, check_out_dir, check_path, check_seed, seed_everything
from tests.helpers import one_error_line, tree_snapshot

DIGITS = ["--dataset", "digits", "--limit", "64", "--epochs", "1", "--no-progress"]
LONG = "x" * 300  # one path component over the 255 bytes every common file system allows

# (command and flags, the text the one error line must hold); {tmp} is the test's folder, where
# "loop" is a symbolic link to itself and "run" an empty folder.
CASES = {
    "fit_seed_2_32": (["fit", *DIGITS, "--seed", str(2**32)], "4294967295"),
    "fit_seed_2_40": (["fit", *DIGITS, "--seed", str(2**40)], "--seed"),
    "lr_find_seed_2_32": (["lr-find", "--dataset", "digits", "--seed", str(2**32)], "--seed"),
    "norms_seeds_2_32": (["norms", "--quick", "--seeds", f"0,{2**32}"], "4294967295"),
    "fit_bs_1_batch": (["fit", *DIGITS, "--bs", "1"], "at least 2"),
    "fit_bs_1_torch_batch": (["fit", *DIGITS, "--bs", "1", "--norm", "torch_batch"],
                             "--norm torch_batch needs a batch of at least 2"),
    "lr_find_bs_1": (["lr-find", "--dataset", "digits", "--bs", "1"], "running_batch"),
    "fit_lsuv_constant_act": (["fit", *DIGITS, "--init", "lsuv", "--act", "0,0,-1"],
                              "--init kaiming"),
    "fit_out_long": (["fit", *DIGITS, "--out", "{tmp}/" + LONG], "--out"),
    "fit_out_long_below_new_folder": (["fit", *DIGITS, "--out", "{tmp}/new/" + LONG + "/run"],
                                      "at most 255"),
    "fit_out_link_loop": (["fit", *DIGITS, "--out", "{tmp}/loop/run"], "loop"),
    "fit_data_long": (["fit", "--limit", "64", "--data", LONG], "--data"),
    "fit_resume_long": (["fit", "--resume", LONG], "--resume"),
    "lr_find_out_long": (["lr-find", "--dataset", "digits", "--out", LONG], "--out"),
    "norms_out_long": (["norms", "--quick", "--out", LONG], "--out"),
    "norms_data_long": (["norms", "--quick", "--data", LONG], "--data"),
    "report_long": (["report", LONG], "RUN_DIR"),
    "report_link_loop": (["report", "{tmp}/loop"], "link loop"),
    "compare_out_long": (["compare", "{tmp}/run", "--out", LONG], "--out"),
    "compare_run_long": (["compare", LONG, "--out", "{tmp}/cmp"], "RUN"),
    "compare_run_link_loop": (["compare", "{tmp}/loop", "--out", "{tmp}/cmp"], "link loop"),
    "norms_threads_100000": (["norms", "--quick", "--threads", "100000"], "--threads"),
    "norms_threads_too_many": (["norms", "--quick", "--threads", str(max_threads() + 1)],
                               "4 per CPU core"),
    "norms_threads_0": (["norms", "--quick", "--threads", "0"], "--threads"),
    "fit_momentum_negative": (["fit", *DIGITS, "--momentum", "-0.1"], "[0, 1)"),
    "fit_momentum_one": (["fit", *DIGITS, "--momentum", "1"], "[0, 1)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line(case: str, tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "run").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACTSCOPE_DATA", str(tmp_path / "no-data"))
    before = tree_snapshot(tmp_path / "run"), sorted(p.name for p in tmp_path.iterdir())
    args, needle = CASES[case]
    code = main([a.replace("{tmp}", str(tmp_path)) for a in args])
    one_error_line(capsys.readouterr().err, needle)
    assert code == 2
    assert (tree_snapshot(tmp_path / "run"), sorted(p.name for p in tmp_path.iterdir())) == before


def test_a_long_actscope_data_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACTSCOPE_DATA", LONG)
    assert main(["fit", "--limit", "64", "--out", "run"]) == 2
    one_error_line(capsys.readouterr().err, "ACTSCOPE_DATA")
    assert list(tmp_path.iterdir()) == []


def test_the_limits_themselves_are_accepted(tmp_path: Path) -> None:
    parser = build_parser()
    assert parser.parse_args(["fit", "--seed", str(2**32 - 1)]).seed == 2**32 - 1
    assert parser.parse_args(["norms", "--seeds", f"0,{2**32 - 1}"]).seeds == [0, 2**32 - 1]
    assert parser.parse_args(["norms", "--threads", str(max_threads())]).threads == max_threads()
    assert parser.parse_args(["fit", "--momentum", "0"]).momentum == 0.0
    assert check_seed(2**32 - 1) == 2**32 - 1
    name = "y" * 255
    assert check_path(tmp_path / name / "run", "--out") == tmp_path / name / "run"
    assert check_out_dir(tmp_path / name) == tmp_path / name


def test_the_api_refuses_the_same_values() -> None:
    with pytest.raises(UsageError, match="4294967295"):
        build(FitConfig(dataset="digits", seed=2**40))
    with pytest.raises(UsageError, match="4294967295"):
        seed_everything(2**32)
    with pytest.raises(UsageError, match="at least 2"):
        build(FitConfig(dataset="digits", bs=1))
    with pytest.raises(UsageError, match="true or false"):
        build(FitConfig(dataset="digits", telemetry="false"))  # type: ignore[arg-type]
    for momentum in (-0.1, 1.0):
        with pytest.raises(UsageError, match=r"in \[0, 1\)"):
            build(FitConfig(dataset="digits", momentum=momentum))


def test_lsuv_on_a_constant_activation_is_an_actscope_error() -> None:
    torch.manual_seed(0)
    model = init_cnn(cnn(nfs=(8, 16), act=partial(GeneralRelu, leak=0.0, sub=0.0, maxv=-1.0)))
    with pytest.raises(InitError, match="constant") as raised:
        lsuv_init(model, torch.randn(8, 1, 28, 28))
    assert isinstance(raised.value, ActscopeError) and isinstance(raised.value, ValueError)
    assert "\n" not in str(raised.value)


# ---- a resumed run's config.json ----------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("limits") / "run"
    assert main(["fit", "--dataset", "digits", "--epochs", "1", "--nfs", "8,16", "--limit", "200",
                 "--no-telemetry", "--no-progress", "--out", str(run)]) == 0
    return run


# (a settings field of config.json, the JSON value written there, the text of the error line)
EDITS = {
    "telemetry_string": ("telemetry", "false", "'telemetry' must be true or false"),
    "overwrite_number": ("overwrite", 0, "'overwrite' must be true or false"),
    "progress_null": ("progress", None, "'progress' must be true or false"),
    "seed_2_40": ("seed", 2**40, "4294967295"),
    "epochs_edited": ("epochs", 2, "trained for 1 epochs"),
}


@pytest.mark.parametrize("case", sorted(EDITS))
def test_an_edited_config_json_is_refused(case: str, finished_run: Path, tmp_path: Path,
                                          capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    name, value, needle = EDITS[case]
    config = json.loads((run / "config.json").read_text())
    config["settings"][name] = value
    (run / "config.json").write_text(json.dumps(config))
    before = tree_snapshot(run)
    code = main(["fit", "--resume", str(run), "--no-progress"])
    one_error_line(capsys.readouterr().err, needle)
    assert code == 2 and tree_snapshot(run) == before


def test_an_unedited_copy_resumes(finished_run: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    assert main(["fit", "--resume", str(run), "--no-progress"]) == 0, capsys.readouterr().err
