"""The on-disk checkpoint store: list, find the newest, save, verify, read. Plain data only.

A checkpoint is a folder ``<run>/checkpoints/ckpt-<seq>/`` holding ``model.safetensors`` (the
weights), ``state.pt`` (a plain dict: optimizer, RNG and callback states; read only with
``torch.load(weights_only=True)``) and ``meta.json`` (where training continues, the size and
SHA-256 of both files, and a SHA-256 of meta.json's own content). It is written under a temp
name, fsynced, then renamed: a folder named ``ckpt-*`` is always complete, so one that is empty,
truncated or edited was damaged afterwards and is refused with a ``CheckpointError`` that names
the older checkpoints to resume from instead. What goes into the state is the callback's
business (``actscope.callbacks.checkpoint``); this module knows files, not the Learner.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_bytes

from actscope.oserrors import write_error
from actscope.safe_load import CheckpointError, load_safetensors_into, safe_torch_load

__all__ = ["CheckpointError", "Checkpoint", "save_checkpoint", "verify_checkpoint",
           "read_checkpoint", "list_checkpoints", "latest_checkpoint", "find_latest_checkpoint",
           "remove_stale_checkpoint_temps", "prune_checkpoints", "checkpoint_seq", "meta_checksum",
           "check_checkpoint_folder", "describe_entry", "CKPT_SUBDIR"]

FORMAT = 2  # 2: meta.json carries its own checksum; 1 (v0.1) is still read, without it
CKPT_SUBDIR = "checkpoints"
MODEL_FILE, STATE_FILE, META_FILE = "model.safetensors", "state.pt", "meta.json"
_NAME = re.compile(r"^ckpt-(\d{6,})$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
# meta.json's position fields: name -> the smallest value allowed
_POSITION = {"seq": 0, "epoch": 0, "iter": 0, "train_iter": 0, "n_epochs": 1}


@dataclass
class Checkpoint:
    """One verified checkpoint: its folder, meta.json and the state dict of state.pt."""

    path: Path
    meta: dict[str, Any]
    state: dict[str, Any]

    def load_weights_into(self, model: torch.nn.Module) -> None:
        """Copy the saved weights into ``model`` (CheckpointError if names or shapes differ)."""
        load_safetensors_into(model, self.path / MODEL_FILE, _fix(self.path))


# ---- listing -------------------------------------------------------------------------------
def checkpoint_seq(ckpt: Path) -> int:
    """The sequence number in a ``ckpt-<seq>`` folder name."""
    m = _NAME.match(ckpt.name)
    if m is None:
        raise CheckpointError(f"{ckpt} is not named like a checkpoint (ckpt-<number>)")
    return int(m.group(1))


def list_checkpoints(root: Path) -> list[Path]:
    """The ``ckpt-*`` folders in ``root`` (a ``checkpoints`` folder), oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if p.is_dir() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def find_latest_checkpoint(path: str | os.PathLike) -> Path | None:
    """The newest checkpoint in a run folder, a checkpoints folder, or ``path`` itself; or None."""
    path = Path(path)
    if (path / META_FILE).is_file() or _NAME.match(path.name) and path.is_dir():
        return path
    for root in (path / CKPT_SUBDIR, path):
        found = list_checkpoints(root)
        if found:
            return found[-1]
    return None


def latest_checkpoint(path: str | os.PathLike) -> Path:
    """Like ``find_latest_checkpoint``, but CheckpointError when there is none."""
    path = Path(path)
    found = find_latest_checkpoint(path)
    if found is not None:
        return found
    if not path.exists():
        raise CheckpointError(f"cannot resume from {path}: it does not exist; pass the run folder "
                              "written by the interrupted run")
    raise CheckpointError(f"cannot resume from {path}: no complete checkpoint in it (looked for "
                          f"{path / CKPT_SUBDIR}/ckpt-*/); was the run started with checkpoints?")


def describe_entry(path: Path) -> str:
    """What ``path`` is, for a message: "a file", "a folder", "a symbolic link to a file"..."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "missing"
    if stat.S_ISLNK(mode):
        target = "a folder" if path.is_dir() else "a file" if path.exists() else None
        return f"a symbolic link to {target}" if target else "a broken symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a file" if stat.S_ISREG(mode) else "a special file (FIFO, socket or device)"


def check_checkpoint_folder(root: Path) -> None:
    """CheckpointError unless ``root`` can take checkpoints: absent or a folder, and every entry
    named ``ckpt-<seq>`` in it a folder (a file there would break a save mid-training).

    Called before a run trains (resume, a CheckpointCallback's ``before_fit``); it changes
    nothing, so the user's entry is kept and the message says what to move.
    """
    if not os.path.lexists(root):
        return
    if not root.is_dir():
        raise CheckpointError(f"{root} is {describe_entry(root)}, not actscope's folder of "
                              "checkpoints: move it out of the run folder, then run again "
                              "(nothing was changed)")
    for entry in sorted(root.iterdir()):
        if _NAME.match(entry.name) and not entry.is_dir():
            raise CheckpointError(f"{entry} is {describe_entry(entry)}, not a checkpoint (those "
                                  f"are folders): move it out of {root}, then run again "
                                  "(nothing was changed)")


def remove_stale_checkpoint_temps(root: Path) -> list[Path]:
    """Delete ``.tmp-ckpt-*`` folders a killed save or prune left in ``root``; return them.

    A writer calls it before it trains: ``check_checkpoint_folder(root)`` runs first, so a
    ``root`` that cannot take checkpoints is refused (CheckpointError) with nothing deleted.
    """
    check_checkpoint_folder(root)
    stale = sorted(root.glob(".tmp-ckpt-*")) if root.is_dir() else []
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale


def prune_checkpoints(root: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (renamed away first: one atomic step)."""
    for old in list_checkpoints(root)[:-keep]:
        trash = old.with_name(f".tmp-{old.name}-del")
        os.rename(old, trash)
        shutil.rmtree(trash, ignore_errors=True)


# ---- writing -------------------------------------------------------------------------------
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


def _check_save_target(root: Path, final: Path) -> None:
    """CheckpointError, deleting nothing, when ``root`` is not a folder or ``final`` exists as
    anything but a real folder of checkpoint files (a user's file, a symlink)."""
    if os.path.lexists(root) and not root.is_dir():
        check_checkpoint_folder(root)  # raises, naming root
    if os.path.lexists(final) and (final.is_symlink() or not final.is_dir()):
        raise CheckpointError(f"cannot save checkpoint {final}: that name is "
                              f"{describe_entry(final)}, not a checkpoint folder; move it out of "
                              f"{root} (it was not touched), then resume the run")


def meta_checksum(meta: dict[str, Any]) -> str:
    """SHA-256 of meta.json's content without its own ``checksum`` field."""
    body = {k: v for k, v in meta.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def save_checkpoint(root: Path, seq: int, weights: dict[str, torch.Tensor],
                    state: dict[str, Any], position: dict[str, Any]) -> Path:
    """Write checkpoint ``seq`` into ``root`` atomically and return its folder.

    ``weights``: CPU tensors (no shared storage); ``state``: plain containers of tensors and
    scalars (``safe_load.to_plain``); ``position``: epoch, iter, train_iter, n_epochs (ints),
    plus anything JSON-able (lr, stopped).
    """
    final = root / f"ckpt-{seq:06d}"
    _check_save_target(root, final)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    target = root  # the file being written, for the one-line error
    try:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        buf = io.BytesIO()
        torch.save(state, buf)
        files = {}
        for name, data in ((MODEL_FILE, safetensors_bytes(weights)), (STATE_FILE, buf.getvalue())):
            target = tmp / name
            files[name] = _write_synced(target, data)
        meta = {"format": FORMAT, "seq": seq, **position,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "torch": torch.__version__, "files": files}
        meta["checksum"] = meta_checksum(meta)
        target = tmp / META_FILE
        _write_synced(target, json.dumps(meta, indent=1).encode())
        _fsync_dir(tmp)
        target = final
        if final.is_dir():  # the same seq written twice (a resumed save): replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(root)
    except OSError as e:
        # A full or failing disk: the half-written checkpoint goes, the older ones stay.
        shutil.rmtree(tmp, ignore_errors=True)
        shown = final / target.name if target.parent == tmp else target
        raise write_error(shown, e) from e
    return final


# ---- reading -------------------------------------------------------------------------------
def _older(ckpt: Path) -> str:
    older = [p.name for p in list_checkpoints(ckpt.parent) if p != ckpt]
    # with none left, --resume starts the run over from config.json (docs/reliability.md)
    return ", ".join(older[-2:]) or "none left: --resume then starts the run over"


def _fix(ckpt: Path) -> str:
    return f"delete {ckpt.name} to resume from an older one ({_older(ckpt)})"


def _refuse(ckpt: Path, what: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {ckpt} is damaged: {what}; {_fix(ckpt)}")


def _check_meta(ckpt: Path, meta: Any) -> dict[str, Any]:
    """meta.json's schema: types, ranges, file entries and (format 2) its own checksum."""
    if not isinstance(meta, dict) or meta.get("format") not in (1, FORMAT):
        raise _refuse(ckpt, f"{META_FILE} is not actscope checkpoint metadata (format 1 or "
                            f"{FORMAT} expected)")
    if meta["format"] >= 2 and meta.get("checksum") != meta_checksum(meta):
        raise _refuse(ckpt, f"{META_FILE} does not match its checksum: it was edited after saving")
    for key, lowest in _POSITION.items():
        v = meta.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < lowest:
            raise _refuse(ckpt, f"{META_FILE} field {key!r} is {v!r}, expected an integer >= "
                                f"{lowest}")
    if meta["epoch"] > meta["n_epochs"] or meta["seq"] != checkpoint_seq(ckpt):
        raise _refuse(ckpt, f"{META_FILE} says epoch {meta['epoch']} of {meta['n_epochs']}, seq "
                            f"{meta['seq']}: inconsistent with the checkpoint")
    files = meta.get("files")
    for name in (MODEL_FILE, STATE_FILE):
        entry = files.get(name) if isinstance(files, dict) else None
        if not (isinstance(entry, dict) and isinstance(entry.get("bytes"), int)
                and isinstance(entry.get("sha256"), str) and _SHA.match(entry["sha256"])):
            raise _refuse(ckpt, f"{META_FILE} lacks the size/SHA-256 of {name}")
    return meta


def verify_checkpoint(ckpt: Path) -> dict[str, Any]:
    """Check meta.json's schema and each file's size and SHA-256; return the metadata."""
    if not ckpt.is_dir():
        raise CheckpointError(f"checkpoint {ckpt} does not exist")
    if not (ckpt / META_FILE).is_file():
        raise _refuse(ckpt, f"it has no {META_FILE} (complete checkpoints always do)")
    try:
        raw = json.loads((ckpt / META_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _refuse(ckpt, f"{META_FILE} is not valid JSON ({' '.join(str(e).split())})"
                      ) from None
    meta = _check_meta(ckpt, raw)
    for name in (MODEL_FILE, STATE_FILE):
        path, want = ckpt / name, meta["files"][name]
        if not path.is_file():
            raise _refuse(ckpt, f"{name} is missing")
        data = path.read_bytes()
        if len(data) != want["bytes"] or hashlib.sha256(data).hexdigest() != want["sha256"]:
            raise _refuse(ckpt, f"{name} does not match the size/SHA-256 in {META_FILE}: it was "
                                "changed after saving")
    return meta


def read_checkpoint(ckpt: Path) -> Checkpoint:
    """Verify ``ckpt``, then read state.pt safely (no code runs); CheckpointError otherwise."""
    meta = verify_checkpoint(ckpt)
    state = safe_torch_load(ckpt / STATE_FILE, _fix(ckpt))
    if not (isinstance(state, dict) and isinstance(state.get("rng"), dict)
            and isinstance(state.get("callbacks", {}), dict)
            and isinstance(state.get("opt"), (dict, type(None)))):
        raise _refuse(ckpt, f"{STATE_FILE} does not hold opt/rng/callbacks states")
    return Checkpoint(path=ckpt, meta=meta, state=state)
