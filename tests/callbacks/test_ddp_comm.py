"""callbacks/ddp_comm.py: the comm hook scales this rank's gradient by its share, then averages."""

from __future__ import annotations

import torch
import torch.distributed as dist

from actscope.callbacks.ddp_comm import GradWeight, weighted_allreduce


class Bucket:
    """The one method of dist.GradBucket the hook uses."""

    def __init__(self, t: torch.Tensor) -> None:
        self.t = t

    def buffer(self) -> torch.Tensor:
        return self.t


def _with_one_rank(tmp_path, fn):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0,
                            world_size=1)
    try:
        return fn()
    finally:
        dist.destroy_process_group()


def test_the_weight_defaults_to_one():
    assert GradWeight().value == 1.0


def test_the_gradient_is_scaled_by_the_weight(tmp_path):
    grad = torch.tensor([1.0, -2.0, 4.0])
    out = _with_one_rank(tmp_path, lambda: weighted_allreduce(GradWeight(0.5), Bucket(grad)).wait())
    torch.testing.assert_close(out, torch.tensor([0.5, -1.0, 2.0]))


def test_weight_one_leaves_the_gradient_as_it_is(tmp_path):
    grad = torch.tensor([3.0, 1.0])
    out = _with_one_rank(tmp_path, lambda: weighted_allreduce(GradWeight(), Bucket(grad)).wait())
    torch.testing.assert_close(out, torch.tensor([3.0, 1.0]))
