"""Loading checkpoint files without ever executing code from them.

Weights live in safetensors files (a JSON header + raw bytes: nothing to execute). Everything
else (optimizer state, RNG states, callback states) is written with ``torch.save`` and read back
only with ``torch.load(weights_only=True)``, whose unpickler accepts tensors and plain containers
and refuses any other global, so a pickle with a ``__reduce__`` payload is rejected before it runs.
NumPy arrays are not plain for that unpickler; ``to_plain``/``from_plain`` wrap them as tensors.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from actscope.errors import ActscopeError

__all__ = ["CheckpointError", "safe_torch_load", "load_safetensors_into", "read_json",
           "to_plain", "from_plain"]

_NDARRAY = "__ndarray__"


class CheckpointError(ActscopeError, ValueError):
    """A checkpoint is missing, incomplete, corrupt, or not safe to load (bad input: CLI exit 2)."""


_FIX = "delete that checkpoint and resume from an older one"


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _unpickler_reason(text: str) -> str:
    """The specific part of torch's weights-only error (after its paragraph on the 2.6 default):
    "Trying to load unsupported GLOBAL ..." or "Unsupported operand ..."."""
    for mark in ("WeightsUnpickler error: ", "Trying to load "):
        at = text.find(mark)
        if at >= 0:
            reason = text[at + (len(mark) if mark.startswith("Weights") else 0):]
            return reason.split(" Check the documentation")[0][:200]
    return text[:200]


def safe_torch_load(path: Path, fix: str = _FIX) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; anything else is a CheckpointError.

    ``fix`` ends the message of a damaged file (what to do instead).
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        why = _unpickler_reason(_one_line(e))
        if "GLOBAL" not in why.upper():  # not a refused object: bytes that are no pickle
            raise CheckpointError(f"cannot read {path}: the file is damaged ({why}); {fix}"
                                  ) from None
        # weights_only refuses every global it does not know: that is where payloads end up.
        raise CheckpointError(
            f"refused to load {path}: it contains Python objects other than tensors and plain "
            f"containers, so loading it could run code ({why}). Checkpoints "
            f"written by actscope never do; only load files from a source you trust: {fix}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path}: the file is damaged ({_one_line(e)[:200]}); "
                              f"{fix}") from None


def load_safetensors_into(model: nn.Module, path: Path, fix: str = _FIX) -> None:
    """Copy the tensors of a safetensors file into ``model`` (names and shapes must match)."""
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a valid safetensors file ({_one_line(e)}); {fix}"
                              ) from None
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit this model: missing {missing[:5]}, unexpected "
                              f"{unexpected[:5]}; build the same model as the run that saved it")
    bad = [k for k in own if own[k].shape != state[k].shape]
    if bad:
        k = bad[0]
        raise CheckpointError(f"{path} does not fit this model: {k} has shape "
                              f"{tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in the "
                              "model; build the same model as the run that saved it")
    model.load_state_dict(state)


def read_json(path: Path) -> Any:
    """Parse a JSON file, turning any failure into a CheckpointError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {path}: {_one_line(e)}") from None


def to_plain(obj: Any) -> Any:
    """Replace NumPy arrays (at any depth) by tagged tensors so weights_only can load them."""
    if isinstance(obj, np.ndarray):
        return {_NDARRAY: torch.from_numpy(np.ascontiguousarray(obj).copy())}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj)
    return obj


def from_plain(obj: Any) -> Any:
    """Inverse of ``to_plain``."""
    if isinstance(obj, dict):
        if set(obj) == {_NDARRAY}:
            return obj[_NDARRAY].numpy()
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(from_plain(v) for v in obj)
    return obj
