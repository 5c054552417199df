"""distributed_launch.py: the torchrun command line built for ``--nproc N``."""

from __future__ import annotations

import sys

import pytest

from actscope.distributed_launch import strip_nproc, torchrun_command
from actscope.errors import UsageError


def test_one_node_is_standalone_and_runs_the_module():
    cmd = torchrun_command(["fit", "--epochs", "1"], 2)
    assert cmd == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc_per_node=2", "--max_restarts=0", "-m", "actscope", "fit",
                   "--epochs", "1"]


def test_a_script_instead_of_a_module():
    cmd = torchrun_command(["train.py", "--x"], 1, module=None)
    assert cmd[-3:] == ["--max_restarts=0", "train.py", "--x"] and "-m" not in cmd[3:]


def test_several_nodes_need_and_get_the_master_address():
    cmd = torchrun_command(["fit"], 4, nnodes=2, node_rank=1, master_addr="10.0.0.1",
                           master_port=1234)
    assert "--standalone" not in cmd
    for part in ("--nnodes=2", "--node_rank=1", "--master_addr=10.0.0.1", "--master_port=1234"):
        assert part in cmd
    with pytest.raises(UsageError, match="multi-node run needs master_addr"):
        torchrun_command(["fit"], 4, nnodes=2)


def test_bad_counts_are_usage_errors():
    with pytest.raises(UsageError, match="node_rank < nnodes, got nnodes=2, node_rank=2"):
        torchrun_command(["fit"], 1, nnodes=2, node_rank=2, master_addr="h")
    with pytest.raises(UsageError, match="nproc"):
        torchrun_command(["fit"], 0)


def test_strip_nproc_removes_both_spellings_only():
    argv = ["fit", "--nproc", "2", "--epochs", "1", "--nproc=3", "--nprocx", "4"]
    assert strip_nproc(argv) == ["fit", "--epochs", "1", "--nprocx", "4"]
