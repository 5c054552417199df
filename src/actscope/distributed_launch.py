"""Start N local processes through torch's own launcher (``python -m torch.distributed.run``).

``actscope fit --nproc 2 ...`` becomes ``torchrun --standalone --nproc_per_node 2 -m actscope fit
...``: the same elastic agent a user runs by hand, so rendezvous, rank variables, and stopping
every rank when one fails all come from torch, not from actscope.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

from actscope.config import positive_int
from actscope.errors import UsageError

__all__ = ["launch", "strip_nproc", "torchrun_command"]


def torchrun_command(args: Sequence[str], nproc: int, nnodes: int = 1, node_rank: int = 0,
                     master_addr: str | None = None, master_port: int = 29500,
                     module: str | None = "actscope") -> list[str]:
    """The ``python -m torch.distributed.run`` command line that runs ``args`` on ``nproc`` ranks.

    With ``module`` set, ``args`` are that module's arguments (``-m actscope fit ...``); with
    ``module=None``, ``args[0]`` is a script. One node uses ``--standalone`` (a free local port);
    several nodes need ``master_addr`` (node 0's address), reachable from every node.
    """
    positive_int(nproc, "nproc")
    if nnodes < 1 or not 0 <= node_rank < nnodes:
        raise UsageError(f"need nnodes >= 1 and 0 <= node_rank < nnodes, got nnodes={nnodes}, "
                         f"node_rank={node_rank}")
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    if nnodes == 1 and master_addr is None:
        cmd += ["--standalone"]
    else:
        if master_addr is None:
            raise UsageError("a multi-node run needs master_addr: the address of node 0, "
                             "reachable from every node")
        cmd += [f"--nnodes={nnodes}", f"--node_rank={node_rank}",
                f"--master_addr={master_addr}", f"--master_port={master_port}"]
    # no restarts: a failing rank ends the job (training is not elastic)
    cmd += [f"--nproc_per_node={nproc}", "--max_restarts=0"]
    if module is not None:
        cmd += ["-m", module]
    return cmd + list(args)


def strip_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N``, for the command each rank runs."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def launch(args: Sequence[str], nproc: int, timeout: float | None = None, **kwargs: object) -> int:
    """Run ``args`` on ``nproc`` local ranks and wait; returns the launcher's exit status."""
    cmd = torchrun_command(args, nproc, **kwargs)  # type: ignore[arg-type]
    proc = subprocess.Popen(cmd)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: torchrun passes it on to every rank before exiting
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print(f"actscope: the {nproc}-process run did not finish in {timeout:.0f} s and was "
              "stopped", file=sys.stderr)
        return 124
    if rc != 0:
        print(f"actscope: the {nproc}-process run failed (exit {rc}): a rank raised an error "
              "and torchrun stopped the others; the first traceback above names the cause",
              file=sys.stderr)
    return rc
