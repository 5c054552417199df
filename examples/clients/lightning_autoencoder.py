"""The Lightning README's ``LitAutoEncoder`` with actscope's ``ActscopeCallback``.

As the README: encoder ``Linear(784, 64) → ReLU → Linear(64, 3)``, decoder back, MSE loss,
``self.log("train_loss", loss)``, Adam at lr 1e-3, MNIST through ``ToTensor`` (0..1, not
normalised) in a ``DataLoader`` with its default batch size 1, ``Trainer(limit_train_batches=100,
max_epochs=1)``. Made a little longer for a loss curve (``steps``); added lines: ``# actscope``.
The report lands in ``<trainer.log_dir>/actscope/``.

    python -m examples.clients.lightning_autoencoder --root runs/lit [--data MNIST_DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning as L
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from actscope.integrations.lightning import ActscopeCallback  # actscope
from examples.clients.data import mnist_tensors

__all__ = ["LitAutoEncoder", "run"]


class LitAutoEncoder(L.LightningModule):
    """The README's autoencoder."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
                      ) -> torch.Tensor:
        # training_step defines the train loop. It is independent of forward
        x, _ = batch
        x = x.view(x.size(0), -1)
        z = self.encoder(x)
        x_hat = self.decoder(z)
        loss = nn.functional.mse_loss(x_hat, x)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> optim.Optimizer:
        optimizer = optim.Adam(self.parameters(), lr=1e-3)
        return optimizer


def run(root: str | Path, data_dir: str | Path | None = None, steps: int = 300,
        batch_size: int = 1, seed: int = 0) -> Path:
    """Fit for ``steps`` batches under ``root``; the report folder."""
    L.seed_everything(seed, verbose=False)
    encoder = nn.Sequential(nn.Linear(28 * 28, 64), nn.ReLU(), nn.Linear(64, 3))
    decoder = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 28 * 28))
    autoencoder = LitAutoEncoder(encoder, decoder)
    x, y = mnist_tensors(data_dir, steps * batch_size, normalize=False)
    train_loader = DataLoader(TensorDataset(x, y), batch_size=batch_size)
    callback = ActscopeCallback()  # actscope
    trainer = L.Trainer(limit_train_batches=steps, max_epochs=1, default_root_dir=str(root),
                        callbacks=[callback],  # actscope
                        accelerator="cpu", logger=True, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model=autoencoder, train_dataloaders=train_loader)
    assert callback.report_path is not None
    return callback.report_path.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="runs/lit")
    p.add_argument("--data", default=None, help="the folder with the four MNIST IDX files")
    p.add_argument("--steps", type=int, default=300)
    a = p.parse_args()
    print(run(a.root, a.data, a.steps))


if __name__ == "__main__":
    main()
