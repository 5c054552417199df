"""A small Lightning fit on MNIST with TensorBoardLogger and actscope's callback (for the README).

Usage: python docs/images/lightning_tensorboard.py MNIST_DIR LOG_DIR
A ReLU MLP, lr 0.5 (high enough that the layers' scale moves), 3 epochs over 10,000 images,
logging actscope's per-layer scalars every 10 optimizer steps.
"""

import sys

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from actscope.data.mnist import load_mnist
from actscope.integrations.lightning import ActscopeCallback


class MLP(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(a, b), nn.ReLU())
                                     for a, b in ((784, 256), (256, 128), (128, 64))])
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        x = x.flatten(1)
        for b in self.blocks:
            x = b(x)
        return self.head(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def main(data: str, log_dir: str) -> None:
    torch.manual_seed(0)
    d = load_mnist(data)
    x = (d.x_train[:10000].float() / 255 - 0.13) / 0.31
    dl = DataLoader(TensorDataset(x, d.y_train[:10000]), batch_size=100, shuffle=True)
    trainer = pl.Trainer(max_epochs=3, logger=TensorBoardLogger(log_dir, name="mlp"),
                         callbacks=[ActscopeCallback(log_every=10, report=False)],
                         log_every_n_steps=10, enable_progress_bar=False,
                         enable_checkpointing=False, accelerator="cpu")
    trainer.fit(MLP(), dl)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
