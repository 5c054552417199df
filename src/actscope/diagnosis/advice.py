"""What to try, given what the run already has: advice read from ``meta["context"]``.

Each remedy is proposed only where it fits (QK-norm and z-loss need attention, ``init_cnn`` a
conv net, ReLU advice a ReLU-family layer) and never where the run has it already (kaiming init
where the weights are kaiming-sized, clipping where ``grad_clip`` is set, warm-up where the
schedule warms up, a norm the model has). Without a context the advice stays general and
proposes nothing the run could already have, except the classic first steps for the classic
findings. Words come from CONTRACT.md's advice vocabulary.
"""

from __future__ import annotations

from typing import Any

from actscope.diagnosis.series import layer_ctx

__all__ = ["Advice"]

_RELU = ("relu", "leaky_relu")
_BOUNDED = ("tanh", "sigmoid", "hardtanh")


class Advice:
    """The run's facts, and the suggestion for each finding kind."""

    def __init__(self, ctx: dict[str, Any] | None) -> None:
        self.ctx = ctx or {}
        self.known = bool(self.ctx)
        model = self.ctx.get("model") or {}
        self.has_conv = bool(model.get("has_conv"))
        self.has_attention = bool(model.get("has_attention"))
        self.has_recurrent = bool(model.get("has_recurrent"))
        self.qk_norm = bool(model.get("qk_norm"))  # the attention normalises q and k already
        self.chain = bool(model.get("chain"))  # nn.Sequential all the way: no residual branch
        self.norms = [str(n) for n in model.get("norms") or []]
        opt = self.ctx.get("optimizer") or {}
        self.lr = opt.get("lr")
        self.weight_decay = opt.get("weight_decay")
        sched = self.ctx.get("schedule") or {}
        self.warmup = sched.get("warmup")
        self.grad_clip = self.ctx.get("grad_clip")
        self.fp16 = self.ctx.get("mixed_precision") == "fp16"

    # ---- facts ---------------------------------------------------------------------------
    def _acts(self, layers: list[str]) -> set[str]:
        return {layer_ctx(self.ctx, n).get("activation") or "none" for n in layers}

    def _has_norm(self, prefix: str) -> bool:
        return any(n.startswith(prefix) or prefix in n for n in self.norms)

    def _init_is(self, layers: list[str], scheme: str) -> bool:
        """Whether the layers' weights already look like ``scheme`` (or no layer has one)."""
        entries = [layer_ctx(self.ctx, n) for n in layers]
        entries = [e for e in entries if e.get("init_scale") is not None] or [
            e for e in (self.ctx.get("layers") or {}).values()
            if isinstance(e, dict) and e.get("init_scale") is not None]
        if not entries:
            return False
        if scheme == "kaiming":
            return all(e.get("init_scheme_guess") == "kaiming"
                       or abs(float(e["init_scale"]) - 1.0) <= 0.25 for e in entries)
        return all(e.get("init_scheme_guess") == scheme for e in entries)

    def _init_off(self, layers: list[str], side: str) -> bool:
        """Whether the context says the weights are too ``small`` / ``large`` for kaiming."""
        scales = [layer_ctx(self.ctx, n).get("init_scale") for n in layers]
        scales = [float(s) for s in scales if s is not None]
        if not scales:
            return False
        return min(scales) < 0.5 if side == "small" else max(scales) > 1.5

    # ---- remedies (each None where it does not fit) --------------------------------------
    def lower_lr(self) -> str | None:
        """Lower the learning rate, unless it is already tiny."""
        if self.lr is not None and float(self.lr) <= 1e-5:
            return None
        at = f" (now {float(self.lr):.3g})" if self.lr is not None else ""
        return f"lower the learning rate{at}, e.g. 3-10x"

    def warm_up(self) -> str | None:
        """A warm-up, unless the schedule has one (or its schedule is unknown)."""
        if self.warmup or (self.ctx.get("schedule") and self.warmup is None):
            return None
        return "a learning-rate warm-up over the first few hundred steps"

    def clipping(self) -> str | None:
        """Gradient clipping, unless the run clips."""
        if self.grad_clip is not None:
            return None
        return "gradient clipping (torch.nn.utils.clip_grad_norm_(params, 1.0))"

    def weight_decay_(self) -> str | None:
        """Weight decay, where the optimizer has none."""
        if self.weight_decay is None or float(self.weight_decay) > 0:
            return None
        return "weight decay (AdamW, 0.1 for transformers, 1e-4 to 1e-2 otherwise)"

    def _less_decay(self) -> str | None:
        """Less weight decay, where lr x weight_decay shrinks every weight by 0.1% a step or more
        (AdamW 1e-3 x 0.1 takes ~10,000 steps to halve a weight: not the cause)."""
        if self.weight_decay is None or self.lr is None:
            return None
        per_step = float(self.lr) * float(self.weight_decay)
        if per_step < 1e-3:
            return None
        return (f"a lower weight_decay (now {float(self.weight_decay):.3g}: with lr "
                f"{float(self.lr):.3g} it shrinks every weight by {per_step:.1%} a step)")

    def _norms_in_train_mode(self) -> str | None:
        """Where a model with running-statistics norms still grows through its depth: in train
        mode those norms reset every block to unit scale, so growth says they may be in eval
        mode (frozen statistics, a stray ``.eval()``), or not where the growth happens."""
        if not any(n.startswith(("BatchNorm", "SyncBatchNorm", "InstanceNorm"))
                   for n in self.norms):
            return None
        return ("checking that the model's norm layers run in train mode while training (in "
                "eval mode their frozen running statistics do not renormalise) and sit in the "
                "growing blocks")

    def norm(self) -> str | None:
        """A norm layer the model does not have: LayerNorm for sequence models, BatchNorm for
        conv nets without any norm."""
        if not self.known:
            return None
        if self.has_attention or self.has_recurrent or not self.has_conv:
            if self._has_norm("LayerNorm") or self._has_norm("RMSNorm"):
                return None
            return "a LayerNorm before each block (pre-norm)"
        # a conv net normalised some other way (GroupNorm, ConvNeXt's LayerNorm) has its norm
        return None if self.norms else "BatchNorm after each conv"

    def _odd_layers(self, side: str) -> str | None:
        """Re-initialising the few layers whose weights are far off kaiming's scale (``side``)
        in a model whose other layers sit at it: the cause, where "use kaiming init" would
        propose what the run mostly has (a checkpoint converted with the wrong unit)."""
        scales = {n: float(e["init_scale"]) for n, e in (self.ctx.get("layers") or {}).items()
                  if isinstance(e, dict) and e.get("init_scale") is not None}
        off = [n for n, v in scales.items() if (v < 0.1 if side == "small" else v > 10.0)]
        fine = [n for n, v in scales.items() if 0.75 <= v <= 1.33]
        if not off or len(off) >= len(fine):
            return None
        worst = min(scales[n] for n in off) if side == "small" else max(scales[n] for n in off)
        return (f"re-initialising {', '.join(off)} (weights at {worst:.2g}x kaiming's scale for "
                f"their fan-in; the other layers are at ~1x): nn.init.kaiming_normal_")

    def init(self, layers: list[str], side: str) -> str | None:
        """Initialisation advice for weights too ``small`` or too ``large``, by activation."""
        odd = self._odd_layers(side)
        if odd:
            return odd
        acts = self._acts(layers)
        if acts & set(_BOUNDED) or (not acts & set(_RELU) and self.has_recurrent):
            if self._init_is(layers, "xavier"):
                return None
            size = "smaller" if side == "large" else "larger"
            return f"a {size} initialisation: xavier (glorot) for tanh/sigmoid layers"
        if self._init_is(layers, "kaiming"):
            return None
        conv = self.has_conv or (not self.known and any("conv" in n.lower() for n in layers))
        if conv:
            return "kaiming init (init_cnn, or nn.init.kaiming_normal_)"
        return "kaiming init (nn.init.kaiming_normal_ for ReLU-family layers)"

    # ---- per kind ------------------------------------------------------------------------
    def join(self, *parts: str | None) -> str:
        """The remedies that fit, as one sentence."""
        kept = [p for p in parts if p]
        if not kept:
            return "check the data and the model definition for what drives this layer"
        return "what to try: " + "; ".join(kept)

    def for_kind(self, kind: str, layers: list[str]) -> str:
        """The suggestion for a finding of ``kind`` on ``layers``."""
        acts = self._acts(layers)
        if kind == "non_finite":
            amp = "bf16 instead of fp16 (or a GradScaler)" if self.fp16 else None
            return self.join(self.lower_lr(), self.clipping(), amp,
                             "checking the inputs and the loss for NaN/Inf")
        if kind in ("growth", "oversized_updates", "unstable"):
            return self.join(self.lower_lr(), self.warm_up(), self.clipping(),
                             self.weight_decay_() if kind == "growth" else None,
                             self.norm() if kind != "oversized_updates" else None)
        if kind == "depth_growth":
            init = self.init(layers, "large") if self._init_off(layers, "large") or not self.known \
                else None
            res = ("residual scaling (scale each block's output projection by "
                   "1/sqrt(2 x number of blocks))") if (self.has_attention or self.has_conv) \
                and not self.chain else None
            return self.join(init, res, self.norm(), self._norms_in_train_mode())
        if kind == "saturated":
            init = self.init(layers, "large")
            return self.join(init, "normalising the inputs of these layers", self.norm(),
                             self.lower_lr())
        if kind == "exploding_gradients":
            rnn = "an LSTM or GRU instead of a vanilla RNN" if self._vanilla_rnn() else None
            init = self.init(layers, "large") if self._init_off(layers, "large") else None
            return self.join(self.clipping(), init, rnn, self.lower_lr(), self.norm())
        if kind == "vanishing_gradients":
            swap = ("ReLU or GELU activations instead of sigmoid/tanh"
                    if acts & set(_BOUNDED) or self._model_bounded() else None)
            return self.join(swap, "residual connections", self.norm(),
                             self.init(layers, "small") if self._init_off(layers, "small")
                             else None)
        if kind == "stalled":
            raise_ = None if self.lr is not None and float(self.lr) >= 1.0 else (
                "raise the learning rate" + (f" (now {float(self.lr):.3g})"
                                             if self.lr is not None else ""))
            return self.join(raise_, "checking that the optimizer holds these parameters and "
                             "that the schedule does not sit at 0")
        if kind == "frozen_updates":  # the weights did not move at all: no lr is too small
            return self.join("checking the learning rate the optimizer actually uses (a schedule "
                             "whose factor is 0, e.g. an integer division, or lr=0)",
                             "that the optimizer holds these parameters",
                             "that the gradients reach them (requires_grad, detach)")
        if kind in ("attention_logits", "attention_entropy"):
            qk = ("QK-norm (normalise queries and keys before their dot product)"
                  if (self.has_attention or not self.known) and not self.qk_norm else None)
            scale = "checking the 1/sqrt(d_head) scaling of the logits"
            return self.join(qk, self.lower_lr(), self.warm_up(), scale)
        if kind == "massive_activations":
            return self.join("checking this layer's biases and features for a runaway value",
                             self.weight_decay_(), self.norm())
        if kind == "logit_divergence":
            z = "z-loss (1e-4 x logsumexp(logits)^2)" if self.has_attention else None
            return self.join(z, self.lower_lr(), self.weight_decay_(), "label smoothing")
        if kind in ("dead", "dead_channels"):
            leak = "GeneralRelu(leak=0.1, sub=0.4) or a leaky ReLU"
            init = None if self._init_is(layers, "kaiming") else self.init(layers, "small")
            return self.join(leak, init, self.lower_lr() if kind == "dead_channels" else None)
        if kind == "shrinking":
            return self.join(self._less_decay(), "checking that the learning-rate schedule does "
                             "not drive the weights to 0", self.norm())
        if kind == "vanishing":
            return self.join(self.init(layers, "small"), "LSUV (lsuv_init)")
        return ""

    def _vanilla_rnn(self) -> bool:
        """Whether the model has a vanilla RNN (an older context without cell names: any
        recurrent layer)."""
        cells = (self.ctx.get("model") or {}).get("recurrent")
        if cells is None:
            return self.has_recurrent
        return any(c in ("RNN", "RNNCell") for c in cells)

    def _model_bounded(self) -> bool:
        acts = [a.lower() for a in (self.ctx.get("model") or {}).get("activations") or []]
        return any(a in ("tanh", "sigmoid", "hardtanh") for a in acts)
