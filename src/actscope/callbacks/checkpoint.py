"""Atomic checkpoints of everything a run needs to continue exactly, and resume from them.

A checkpoint is a directory ``<run_dir>/checkpoints/ckpt-<seq>/`` holding ``model.safetensors``
(weights), ``state.pt`` (optimizer, RNG states, callback states; loaded with weights_only=True)
and ``meta.json`` (position, file sizes and SHA-256). It is written under a temporary name,
fsynced, then renamed: a directory named ``ckpt-*`` is always complete. The newest ``keep`` stay.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import save as safetensors_bytes

from actscope.callback import Callback
from actscope.dist import is_main_process, unwrap_model
from actscope.rng import capture_rng, restore_rng
from actscope.safe_load import (
    CheckpointError,
    from_plain,
    load_safetensors_into,
    read_json,
    safe_torch_load,
    to_plain,
)

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["CheckpointCallback", "CheckpointError", "save_checkpoint", "load_checkpoint",
           "list_checkpoints", "latest_checkpoint"]

FORMAT = 1
CKPT_SUBDIR = "checkpoints"
MODEL_FILE, STATE_FILE, META_FILE = "model.safetensors", "state.pt", "meta.json"
_NAME = re.compile(r"^ckpt-(\d{6,})$")


# ---- files ---------------------------------------------------------------------------------
def _write_synced(path: Path, data: bytes) -> dict[str, Any]:
    """Write ``data`` and fsync it; return its size and SHA-256 for meta.json."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # makes the rename itself durable
    finally:
        os.close(fd)


def list_checkpoints(root: Path) -> list[Path]:
    """The complete checkpoints in ``root`` (a ``checkpoints`` folder), oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if p.is_dir() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(path: str | os.PathLike) -> Path:
    """The newest complete checkpoint in a run folder, a checkpoints folder, or ``path`` itself."""
    path = Path(path)
    if (path / META_FILE).is_file():
        return path
    for root in (path / CKPT_SUBDIR, path):
        found = list_checkpoints(root)
        if found:
            return found[-1]
    if not path.exists():
        raise CheckpointError(f"cannot resume from {path}: it does not exist; pass the run folder "
                              "written by the interrupted run")
    raise CheckpointError(f"cannot resume from {path}: no complete checkpoint in it (looked for "
                          f"{path / CKPT_SUBDIR}/ckpt-*/); was the run started with checkpoints?")


# ---- callback states -----------------------------------------------------------------------
def _stateful_callbacks(learn: Learner) -> dict[str, Any]:
    """Callbacks that override ``Callback.state_dict``, keyed by ``checkpoint_key()``
    (``Name#2`` for repeats)."""
    keyed: dict[str, Any] = {}
    for cb in sorted(learn.cbs, key=lambda c: c.order):
        if type(cb).state_dict is not Callback.state_dict:
            name, k = cb.checkpoint_key(), 2
            key = name
            while key in keyed:
                key, k = f"{name}#{k}", k + 1
            keyed[key] = cb
    return keyed


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def _load_callback_states(learn: Learner, states: dict[str, Any]) -> None:
    # Tensors go where the model is (the file is read on the CPU): running sums on a GPU
    # must not meet CPU tensors in the next batch. NumPy arrays stay on the host.
    param = next(learn.model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    for key, cb in _stateful_callbacks(learn).items():
        if key in states:
            cb.load_state_dict(_to_device(from_plain(states[key]), device))


# ---- save / load ---------------------------------------------------------------------------
def save_checkpoint(learn: Learner, root: Path, seq: int, epoch: int, iter: int) -> Path:
    """Write checkpoint ``seq`` into ``root``; training continues at (``epoch``, batch ``iter``)."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"ckpt-{seq:06d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    # Copies break weight tying, so save() never sees shared storage; load_state_dict re-ties.
    weights = {k: v.detach().to("cpu", copy=True).contiguous()
               for k, v in unwrap_model(learn.model).state_dict().items()
               if isinstance(v, torch.Tensor)}  # unwrapped: no DDP "module." prefix
    buf = io.BytesIO()
    torch.save({"opt": learn.opt.state_dict() if learn.opt is not None else None,
                "rng": to_plain(capture_rng()),
                "callbacks": {k: to_plain(cb.state_dict())
                              for k, cb in _stateful_callbacks(learn).items()}}, buf)
    files = {MODEL_FILE: _write_synced(tmp / MODEL_FILE, safetensors_bytes(weights)),
             STATE_FILE: _write_synced(tmp / STATE_FILE, buf.getvalue())}
    meta = {"format": FORMAT, "seq": seq, "epoch": epoch, "iter": iter,
            "train_iter": learn.train_iter, "n_epochs": learn.n_epochs, "lr": learn.lr,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "torch": torch.__version__, "files": files}
    _write_synced(tmp / META_FILE, json.dumps(meta, indent=1).encode())
    _fsync_dir(tmp)
    if final.exists():  # same seq written twice (should not happen): replace atomically-ish
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    return final


def verify_checkpoint(ckpt: Path) -> dict[str, Any]:
    """Read meta.json and check each file's size and SHA-256; return the metadata."""
    meta = read_json(ckpt / META_FILE)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{ckpt / META_FILE} is not an actscope checkpoint "
                              f"(format {FORMAT} expected)")
    for name in (MODEL_FILE, STATE_FILE):
        path, want = ckpt / name, meta.get("files", {}).get(name, {})
        if not path.is_file():
            raise CheckpointError(f"checkpoint {ckpt} lacks {name}; resume from an older one")
        data = path.read_bytes()
        if len(data) != want.get("bytes") or hashlib.sha256(data).hexdigest() != want.get("sha256"):
            older = [p.name for p in list_checkpoints(ckpt.parent) if p != ckpt]
            raise CheckpointError(f"{path} does not match the size/SHA-256 in meta.json: it was "
                                  f"changed after saving. Resume from an older checkpoint "
                                  f"({', '.join(older[-2:]) or 'none left'}) or delete this one")
    return meta


def load_checkpoint(learn: Learner, ckpt: Path) -> dict[str, Any]:
    """Restore model, optimizer, RNG and callback states from ``ckpt``; return its metadata."""
    meta = verify_checkpoint(ckpt)
    state = safe_torch_load(ckpt / STATE_FILE)
    load_safetensors_into(learn.model, ckpt / MODEL_FILE)
    if state.get("opt") is not None and learn.opt is not None:
        try:
            learn.opt.load_state_dict(state["opt"])
        except (ValueError, KeyError) as e:
            raise CheckpointError(f"the optimizer state in {ckpt} does not fit this optimizer "
                                  f"({e}); use the opt_func of the run that saved it") from None
    _load_callback_states(learn, state.get("callbacks", {}))
    restore_rng(from_plain(state["rng"]))
    meta["_state"] = state
    return meta


# ---- the callback --------------------------------------------------------------------------
class CheckpointCallback(Callback):
    """Save at every epoch end (and every ``every_n_batches`` steps) into ``run_dir``; resume."""

    order = 70

    def __init__(self, run_dir: str | os.PathLike, every_n_batches: int | None = None,
                 keep: int = 3) -> None:
        if every_n_batches is not None and (not isinstance(every_n_batches, int)
                                            or every_n_batches <= 0):
            raise ValueError(f"every_n_batches must be a positive integer or None, got "
                             f"{every_n_batches!r}")
        if not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be an integer >= 1 (checkpoints kept), got {keep!r}")
        self.run_dir, self.every, self.keep = Path(run_dir), every_n_batches, keep
        self.root = self.run_dir / CKPT_SUBDIR
        self.saved: list[Path] = []
        self.resumed_from: Path | None = None
        self._pending: dict[str, Any] | None = None
        self._last_step = -1
        self._seq = 0

    def before_fit(self, learn: Learner) -> None:
        for stale in self.root.glob(".tmp-ckpt-*") if self.root.is_dir() else ():
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed run: never complete
        existing = list_checkpoints(self.root)
        self._seq = int(_NAME.match(existing[-1].name).group(1)) + 1 if existing else 0
        self._last_step, self._pending = -1, None
        if learn.resume_from is None:
            return
        # resume=True: this callback's own run folder
        ckpt = latest_checkpoint(self.run_dir if learn.resume_from is True else learn.resume_from)
        meta = load_checkpoint(learn, ckpt)
        learn.resume_from, self.resumed_from = None, ckpt
        learn.first_epoch, learn.first_iter = meta["epoch"], meta["iter"]
        learn.train_iter = self._last_step = meta["train_iter"]
        if meta["iter"] > 0:
            # before_epoch/before_train of the resumed epoch may reset partial sums and draw
            # random numbers; the uninterrupted run did neither at this point, so re-apply.
            self._pending = meta["_state"]

    def before_train(self, learn: Learner) -> None:
        if self._pending is None:
            return
        _load_callback_states(learn, self._pending.get("callbacks", {}))
        restore_rng(from_plain(self._pending["rng"]))
        self._pending = None

    def after_batch(self, learn: Learner) -> None:
        if not learn.training or self.every is None or learn.train_iter == self._last_step:
            return
        if learn.train_iter % self.every or learn.iter + 1 >= learn.n_iter:
            return  # not due, or the epoch-end checkpoint follows anyway
        self.save(learn, learn.epoch, learn.iter + 1)

    def after_epoch(self, learn: Learner) -> None:
        self.save(learn, learn.epoch + 1, 0)

    def save(self, learn: Learner, epoch: int, iter: int) -> Path | None:
        """Write one checkpoint now (continuing at ``epoch``/``iter``) and prune old ones."""
        for cb in learn.cbs:  # never save a non-finite state: a guard may veto (host sync here)
            cb.check_checkpointable(learn)
        if not is_main_process():  # under torchrun all ranks hold the same state: rank 0 writes
            for cb in _stateful_callbacks(learn).values():
                cb.state_dict()  # it may take part in a collective (MetricsCallback's sums)
            self._seq, self._last_step = self._seq + 1, learn.train_iter
            return None
        path = save_checkpoint(learn, self.root, self._seq, epoch, iter)
        self._seq, self._last_step = self._seq + 1, learn.train_iter
        self.saved.append(path)
        for old in list_checkpoints(self.root)[:-self.keep]:
            trash = old.with_name(f".tmp-{old.name}-del")
            os.rename(old, trash)  # gone from the complete set in one step, then deleted
            shutil.rmtree(trash, ignore_errors=True)
        return path
