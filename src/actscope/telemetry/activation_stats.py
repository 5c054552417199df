"""ActivationStatsCallback: per-layer activation telemetry at three device ops per layer per batch.

The hot path (a forward hook, per watched module, on every recorded training batch):
    1. ``flat.sum()`` and 2. ``torch.dot(flat, flat)``: the EXACT sum and sum of squares of the
       whole activation, kept as 0-d device tensors (stacked into a device buffer once per chunk;
       ``torch.var_mean`` would be one op, but on CPU it is ~50x slower than these two);
    3. ``torch.index_select`` of K fixed flat positions, written with ``out=`` straight into a
       preallocated ``(L, chunk, K)`` device buffer.
Every ``chunk`` recorded batches (and on request) a flush computes, in a handful of ops over all
layers at once, mean/std, the histograms, the near-zero ("dead") share and the optional mean
absolute deviation from those SAMPLES, into device buffers that grow geometrically. Nothing reaches
the host until ``result()`` (called by you, by ``after_fit``, by the report).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from actscope.atomic import atomic_write
from actscope.callback import Callback
from actscope.dist import get_rank, get_world_size
from actscope.telemetry import stats
from actscope.telemetry.hooks import Hook, Hooks, child_blocks

if TYPE_CHECKING:
    from actscope.learner import Learner

__all__ = ["ActivationStatsCallback", "Telemetry"]

ModuleSpec = Sequence[nn.Module] | Callable[[nn.Module], Sequence[nn.Module]] | None
_ARRAYS = ("iters", "mean", "std", "hist", "hist_range", "dead", "mad", "grad_mean", "grad_std")


def recording_scope() -> str:
    """Whose batches the stats describe: this process, or one rank's shard under torchrun."""
    world = get_world_size()
    # under DDP only rank 0 saves its recording, over its B/W rows of each global batch
    return f"rank {get_rank()} of {world}" if world > 1 else "single process"


@dataclass
class Telemetry:
    """Recorded activation statistics: arrays ``[layer, record]`` and ``[layer, record, bin]``.

    ``iters[j]`` is the training iteration (optimizer step index) of record ``j``. ``mean``/``std``
    (and ``grad_mean``/``grad_std``) are exact over the whole activation; ``hist``, ``dead`` and
    ``mad`` come from ``meta["sample_size"]`` fixed positions per batch (see docs/telemetry.md).
    """

    names: list[str]
    iters: np.ndarray  # (N,) int64
    mean: np.ndarray  # (L, N) float32
    std: np.ndarray  # (L, N)
    hist: np.ndarray  # (L, N, bins) int32
    hist_range: np.ndarray  # (L, 2): lo, hi of each layer's histogram
    dead: np.ndarray  # (L, N): share of sampled |x| < dead_threshold (or dead_bins * bin width)
    mad: np.ndarray | None = None  # (L, N)
    grad_mean: np.ndarray | None = None  # (L, N), of the module's output gradient
    grad_std: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        """Number of watched modules."""
        return len(self.names)

    def save(self, path: str | Path) -> Path:
        """Write a ``.npz`` atomically (temp file + fsync + rename); returns the path."""
        path = Path(path)
        arrays = {k: getattr(self, k) for k in _ARRAYS if getattr(self, k) is not None}
        with atomic_write(path, "wb") as f:
            np.savez_compressed(f, names=np.array(self.names, dtype=str),
                                meta=np.array(json.dumps(self.meta)), **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Telemetry:
        """Read a ``.npz`` written by ``save``."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no telemetry file at {path}; record one with "
                                    "ActivationStatsCallback and Telemetry.save")
        with np.load(path, allow_pickle=False) as z:
            missing = {"names", "iters", "mean", "std", "hist", "dead"} - set(z.files)
            if missing:
                raise ValueError(f"{path} is not an actscope telemetry file (missing "
                                 f"{sorted(missing)})")
            kw = {k: z[k] for k in _ARRAYS if k in z.files}
            return cls(names=[str(n) for n in z["names"]], meta=json.loads(str(z["meta"])), **kw)


def _default_modules(model: nn.Module) -> list[nn.Module]:
    """The conv blocks of a ``cnn(...)`` model, else every child block."""
    try:
        from actscope.nn.cnn import conv_blocks
        blocks = list(conv_blocks(model))
        if blocks:
            return blocks
    except Exception:  # not a cnn(...) model, or nn.cnn not available: fall back
        pass
    return child_blocks(model)


def _grow(buf: torch.Tensor, need: int) -> torch.Tensor:
    """``buf`` with room for ``need`` records along dim 1, doubling (device-side copy only)."""
    if need <= buf.shape[1]:
        return buf
    cap = max(need, 2 * buf.shape[1])
    new = buf.new_zeros((buf.shape[0], cap, *buf.shape[2:]))
    new[:, : buf.shape[1]] = buf
    return new


def describe_module(module: nn.Module) -> str:
    """A short label for plots and findings: ``conv 8→16`` for a conv block, else the class name."""
    conv = next((m for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    if conv is None:
        return type(module).__name__
    return f"conv {conv.in_channels}→{conv.out_channels}"


class ActivationStatsCallback(Callback):
    """Records mean, std, histogram and dead share of each watched module's output, on device.

    Args:
        modules: modules to watch, or a function ``model -> modules``; default: the conv blocks
            of a ``cnn(...)`` model, else every child block that has parameters.
        every: record every ``every``-th training batch.
        bins, hist_range: histogram bins and ``(lo, hi)``; default range per layer from the first
            chunk (see ``stats.default_hist_range``).
        dead_threshold: a sample is "near zero" ("dead") when ``|x| < dead_threshold``. An
            absolute threshold, because a bin width depends on the (data-derived) range: with a
            [-16, 16] range a 1-bin rule counted GeneralRelu(sub=0.4)'s healthy outputs near -0.4
            as dead. 0.05 is fastai's near-zero cut-off; plain ReLU's dead units are exact zeros.
        dead_bins: if given, use the lesson's rule instead: ``|x| < dead_bins * bin width``
            (meant with a fixed ``hist_range``, as in the lesson's (-7, 7) and (0, 10)).
        sample_size: K positions per layer per batch for histogram/dead share/mad.
        chunk: recorded batches between flushes (bounds the sample buffer: L*chunk*K floats).
    """

    order = -5

    def __init__(self, modules: ModuleSpec = None, every: int = 1, bins: int = 40,
                 hist_range: tuple[float, float] | None = None,
                 dead_threshold: float = 0.05, dead_bins: int | None = None,
                 mad: bool = False, grads: bool = False, sample_size: int = 2048,
                 chunk: int = 128, seed: int = 0) -> None:
        if (every < 1 or bins < 2 or sample_size < 1 or chunk < 1 or not dead_threshold > 0
                or (dead_bins is not None and dead_bins < 1)):
            raise ValueError("need every >= 1, bins >= 2, sample_size >= 1, chunk >= 1, "
                             f"dead_threshold > 0, dead_bins >= 1; got every={every}, "
                             f"bins={bins}, sample_size={sample_size}, chunk={chunk}, "
                             f"dead_threshold={dead_threshold}, dead_bins={dead_bins}")
        if hist_range is not None and not hist_range[0] < hist_range[1]:
            raise ValueError(f"hist_range must be (lo, hi) with lo < hi, got {hist_range}")
        self.modules_spec, self.every, self.bins, self.hist_range = modules, every, bins, hist_range
        self.dead_threshold, self.dead_bins = dead_threshold, dead_bins
        self.want_mad, self.want_grads = mad, grads
        self.k, self.chunk, self.seed = sample_size, chunk, seed
        self.hooks = Hooks()
        self.grad_hooks = Hooks()
        self.names: list[str] = []
        self._recording = False
        self._cached: Telemetry | None = None
        # Sample positions per (numel, device), kept across fits: computed once per shape.
        self._idx: dict[tuple[int, torch.device], torch.Tensor] = {}

    # ---- set-up and tear-down ------------------------------------------------------------
    def before_fit(self, learn: Learner) -> None:
        spec = self.modules_spec
        mods = list(spec(learn.model) if callable(spec) else
                    (spec if spec is not None else _default_modules(learn.model)))
        if not mods:
            raise ValueError("ActivationStatsCallback found no modules to watch; "
                             "pass modules=[...] or a function model -> modules")
        self.watch(mods, learn.model)

    def watch(self, modules: Sequence[nn.Module], model: nn.Module | None = None) -> None:
        """Register the hooks and reset the buffers (called by ``before_fit``)."""
        self.remove()
        qual = {id(m): n for n, m in model.named_modules()} if model is not None else {}
        self.names = [f"{qual.get(id(m), i)} {describe_module(m)}" for i, m in enumerate(modules)]
        L = len(modules)
        self._samples: torch.Tensor | None = None  # (L, chunk, K), allocated on first use
        self._views: list[list[torch.Tensor]] = []
        # Per layer, per slot of the chunk: the (var, mean) 0-d tensors of that batch, or None.
        self._vm: list[list[Any]] = [[None] * self.chunk for _ in range(L)]
        self._gvm: list[list[Any]] = [[None] * self.chunk for _ in range(L)]
        self._slot, self._n, self._iters = 0, 0, []
        self._bufs: dict[str, torch.Tensor] = {}
        self._lo = self._hi = None
        self._cached = None
        self.hooks = Hooks(modules, self._forward)
        if self.want_grads:
            # torch warns when the first module's input needs no grad; the output grad we read
            # is still right, so the warning is noise here.
            warnings.filterwarnings("ignore", message="Full backward hook is firing when grad")
            self.grad_hooks = Hooks(modules, self._backward, kind="backward")
        for hooks in (self.hooks, self.grad_hooks):
            for i, h in enumerate(hooks):
                h.layer = i  # the hook carries its row: no lookup on the hot path

    def remove(self) -> None:
        """Remove all hooks (idempotent)."""
        self.hooks.remove()
        self.grad_hooks.remove()

    def after_fit(self, learn: Learner) -> None:
        # Always runs (also on cancel or error): hooks go first, then one read-back to the host.
        self.remove()
        self._recording = False
        if getattr(self, "_iters", None):
            self._cached = self.result()

    # ---- the hot path --------------------------------------------------------------------
    def before_batch(self, learn: Learner) -> None:
        self._recording = learn.training and learn.train_iter % self.every == 0

    def after_pred(self, learn: Learner) -> None:
        if not self._recording or self._samples is None:  # None: no watched module ran yet
            return
        # The forward hooks have all fired: commit this record.
        self._iters.append(learn.train_iter)
        self._slot += 1
        self._cached = None
        if self._slot == self.chunk:
            self._flush()

    def after_batch(self, learn: Learner) -> None:
        self._recording = False

    def _forward(self, hook: Hook, module: nn.Module, inputs: Any, out: Any) -> None:
        if not self._recording or not isinstance(out, torch.Tensor):
            return
        layer = hook.layer
        flat = out.detach().reshape(-1)
        if flat.dtype != torch.float32:  # half/bfloat16 sums would lose the exactness we promise
            flat = flat.float()
        n = flat.shape[0]
        idx = self._idx.get((n, flat.device))
        if idx is None:
            idx = self._idx[(n, flat.device)] = stats.sample_indices(n, self.k, flat.device,
                                                                     self.seed)
        if self._samples is None:
            self._alloc(flat)
        torch.index_select(flat, 0, idx, out=self._views[layer][self._slot])
        self._vm[layer][self._slot] = (flat.sum(), torch.dot(flat, flat), n)

    def _backward(self, hook: Hook, module: nn.Module, grad_in: Any, grad_out: Any) -> None:
        if not self._recording or not grad_out or grad_out[0] is None:
            return
        g = grad_out[0].detach().reshape(-1).float()
        # Backward runs after after_pred committed the record: its slot is the previous one.
        self._gvm[hook.layer][self._slot - 1] = (g.sum(), torch.dot(g, g), g.shape[0])

    def _alloc(self, like: torch.Tensor) -> None:
        L = len(self.names)
        self._samples = torch.zeros(L, self.chunk, self.k, dtype=torch.float32, device=like.device)
        # One view per (layer, slot), made once: the hook then does no indexing of its own.
        self._views = [[self._samples[i, j] for j in range(self.chunk)] for i in range(L)]

    # ---- flush (device only) and read-back --------------------------------------------------
    def _flush(self) -> None:
        n = self._slot
        if n == 0 or self._samples is None:
            return
        s = self._samples[:, :n]  # (L, n, K)
        if self._lo is not None and self._lo.device != s.device:  # restored from a checkpoint
            self._lo, self._hi = self._lo.to(s.device), self._hi.to(s.device)
        if self._lo is None:
            if self.hist_range is None:
                self._lo, self._hi = stats.default_hist_range(s)
            else:
                L = s.shape[0]
                self._lo = torch.full((L,), float(self.hist_range[0]), device=s.device)
                self._hi = torch.full((L,), float(self.hist_range[1]), device=s.device)
        vm = self._pairs_block(self._vm, n, s.device)
        hist = stats.histograms(s, self._lo, self._hi, self.bins)
        if self.dead_bins is None:
            thresh = torch.full_like(self._lo, self.dead_threshold)
        else:
            thresh = self.dead_bins * (self._hi - self._lo) / self.bins
        new = {
            "var_mean": vm,  # (L, n, 2): var, mean
            "hist": hist,
            "dead": stats.near_zero_share(s, thresh, counted=hist.sum(dim=2)),
        }
        if self.want_mad:
            new["mad"] = stats.mean_abs_dev(s, vm[..., 1])
        if self.want_grads:
            new["grad_var_mean"] = self._pairs_block(self._gvm, n, s.device)
        for key, val in new.items():
            buf = self._bufs.get(key)
            if buf is not None and buf.device != val.device:
                buf = buf.to(val.device)
            if buf is None:
                buf = val.new_zeros((val.shape[0], max(4 * n, 64), *val.shape[2:]))
            buf = _grow(buf, self._n + n)
            buf[:, self._n: self._n + n] = val
            self._bufs[key] = buf
        self._n += n
        self._slot = 0
        self._vm = [[None] * self.chunk for _ in self._vm]
        self._gvm = [[None] * self.chunk for _ in self._gvm]

    @staticmethod
    def _pairs_block(rows: list[list[Any]], n: int, device: torch.device) -> torch.Tensor:
        """(L, n, 2) var/mean from per-slot (sum, sum of squares, count); NaN where none.

        Built from device scalars and fills only (no list-to-tensor copies), so a flush makes
        no host-device transfer at all.
        """
        nan = torch.full((), float("nan"), device=device)
        out = []
        for layer in rows:
            entries = layer[:n]
            pairs = [e[:2] if e is not None else (nan, nan) for e in entries]
            sums = torch.stack([v for pair in pairs for v in pair]).float().view(n, 2)
            cs = [float(e[2]) if e is not None else 1.0 for e in entries]
            counts = (torch.full((n,), cs[0], device=device) if len(set(cs)) == 1 else
                      torch.stack([torch.full((), c, device=device) for c in cs]))
            mean = sums[:, 0] / counts
            # E[x^2] - E[x]^2 in float32: fine while |mean| / std stays below ~1e3 (see docs).
            var = (sums[:, 1] / counts - mean * mean).clamp_min(0)
            var = var * counts / (counts - 1).clamp_min(1)  # unbiased, like torch.std
            out.append(torch.stack([var, mean], dim=-1))
        return torch.stack(out)

    def result(self) -> Telemetry:
        """Flush and read the telemetry back to the host (one sync); cached until new records."""
        if self._cached is not None:
            return self._cached
        if not getattr(self, "_iters", None):
            raise RuntimeError("no telemetry recorded yet: fit with ActivationStatsCallback in "
                               "cbs first (only training batches are recorded)")
        self._flush()
        n = self._n
        host = {k: v[:, :n].cpu().numpy() for k, v in self._bufs.items()}
        var, mean = host["var_mean"][..., 0], host["var_mean"][..., 1]
        grads = host.get("grad_var_mean")
        self._cached = Telemetry(
            names=list(self.names), iters=np.asarray(self._iters[:n], dtype=np.int64),
            mean=mean.astype(np.float32), std=np.sqrt(np.maximum(var, 0)).astype(np.float32),
            hist=host["hist"], hist_range=torch.stack([self._lo, self._hi], 1).cpu().numpy(),
            dead=host["dead"].astype(np.float32), mad=host.get("mad"),
            grad_mean=None if grads is None else grads[..., 1],
            grad_std=None if grads is None else np.sqrt(np.maximum(grads[..., 0], 0)),
            meta={"every": self.every, "bins": self.bins, "dead_bins": self.dead_bins,
                  "dead_threshold": self.dead_threshold,
                  "sample_size": self.k, "exact": ["mean", "std", "grad_mean", "grad_std"],
                  "sampled": ["hist", "dead", "mad"],
                  "bytes_per_record_per_layer": self.bytes_per_record(),
                  "scope": recording_scope()})
        return self._cached

    # ---- checkpoint protocol (see docs/api.md) -------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything recorded so far (flushes; one read-back), for an exact resume."""
        self._flush()
        n = self._n
        state: dict[str, Any] = {"names": list(self.names), "iters": list(self._iters[:n]),
                                 "bufs": {k: v[:, :n].cpu() for k, v in self._bufs.items()}}
        if self._lo is not None:
            state["range"] = torch.stack([self._lo, self._hi]).cpu()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s records (idempotent); recording then continues after them."""
        if list(state["names"]) != list(self.names):
            raise ValueError(f"checkpointed telemetry watched {state['names']}, this fit watches "
                             f"{self.names}: resume with the same model and modules")
        self._iters = list(state["iters"])
        self._n = len(self._iters)
        self._bufs = {k: v.clone() for k, v in state["bufs"].items()}
        self._lo, self._hi = (state["range"][0], state["range"][1]) if "range" in state else (
            None, None)
        self._slot, self._cached = 0, None
        self._vm = [[None] * self.chunk for _ in self._vm]
        self._gvm = [[None] * self.chunk for _ in self._gvm]

    def bytes_per_record(self) -> int:
        """Device bytes kept per recorded batch per layer after a flush (the samples are reused)."""
        per = 8 + 4 * self.bins + 4  # var+mean, int32 histogram, dead share
        return per + (4 if self.want_mad else 0) + (8 if self.want_grads else 0)
