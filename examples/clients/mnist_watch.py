"""pytorch/examples ``mnist/main.py`` with ``actscope.watch()``: the client's code as it is, with
the added lines marked ``# actscope``.

As upstream: the same ``Net`` (conv1, conv2, two dropouts, fc1, fc2, ``F.relu`` applied outside
the modules, ``log_softmax``), Adadelta at lr 1.0, ``StepLR(step_size=1, gamma=0.7)``,
``nll_loss``, batch size 64, images normalised by (0.1307, 0.3081). Made small for a test: the
first ``n_train`` images, ``width`` scales the channel counts (1.0 is upstream's 32/64/128).

    python -m examples.clients.mnist_watch --out runs/mnist-watch [--data MNIST_DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset

import actscope  # actscope
from examples.clients.data import mnist_tensors

__all__ = ["Net", "run"]


class Net(nn.Module):
    """pytorch/examples' MNIST net (``width`` 1.0: upstream's sizes)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c1, c2, h = round(32 * width), round(64 * width), round(128 * width)
        self.conv1 = nn.Conv2d(1, c1, 3, 1)
        self.conv2 = nn.Conv2d(c1, c2, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(c2 * 12 * 12, h)
        self.fc2 = nn.Linear(h, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def train(model: nn.Module, train_loader: DataLoader, optimizer: optim.Optimizer,
          w: actscope.Watch) -> None:
    """One epoch, as upstream's ``train`` (its logging left out)."""
    model.train()
    for data, target in train_loader:
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        w.step(loss=loss)  # actscope: one record per batch, the loss with it (no host sync)


def test(model: nn.Module, test_loader: DataLoader) -> float:
    """Mean test loss, as upstream's ``test`` (eval mode: not recorded)."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for data, target in test_loader:
            total += F.nll_loss(model(data), target, reduction="sum").item()
    return total / len(test_loader.dataset)


def run(out: str | Path, data_dir: str | Path | None = None, n_train: int = 6400,
        epochs: int = 2, width: float = 1.0, lr: float = 1.0, seed: int = 1) -> Path:
    """Train as upstream's ``main`` for ``epochs`` on ``n_train`` images; the report folder."""
    torch.manual_seed(seed)
    x, y = mnist_tensors(data_dir, n_train + 1000)
    train_loader = DataLoader(TensorDataset(x[:n_train], y[:n_train]), batch_size=64,
                              shuffle=True)
    test_loader = DataLoader(TensorDataset(x[n_train:], y[n_train:]), batch_size=1000)
    model = Net(width)
    optimizer = optim.Adadelta(model.parameters(), lr=lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    with actscope.watch(model, optimizer=optimizer, scheduler=scheduler) as w:  # actscope
        for _ in range(epochs):
            train(model, train_loader, optimizer, w)
            test(model, test_loader)
            scheduler.step()
            w.end_epoch()  # actscope: closes the epoch's per-channel record
    return w.report(out)  # actscope


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/mnist-watch")
    p.add_argument("--data", default=None, help="the folder with the four MNIST IDX files")
    p.add_argument("--n-train", type=int, default=6400)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1.0)
    a = p.parse_args()
    print(run(a.out, a.data, a.n_train, a.epochs, a.width, a.lr))


if __name__ == "__main__":
    main()
