"""Hooks as resources: registered once, removed on remove(), on leaving ``with``, on gc, on error.

``Hook(module, fn)`` calls ``fn(hook, module, inputs, output)`` after every forward of ``module``
(``kind="backward"``: ``fn(hook, module, grad_input, grad_output)`` through
``register_full_backward_hook``). ``Hooks`` is a list container of ``Hook`` with int, slice,
boolean-mask and index-list indexing. Registering the same ``fn`` twice on one module through
actscope does not double count: the second registration reuses the first handle.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from torch import nn

__all__ = ["Hook", "Hooks", "WeakCall", "modules_by_type", "modules_by_name", "child_blocks"]

HookFn = Callable[..., Any]
_KINDS = ("forward", "backward")
# (id(module), kind, fn) -> live Hook; guards against registering one function twice on a module.
_LIVE: dict[tuple[int, str, int, int], weakref.ref] = {}


class WeakCall:
    """What a module holds for one of actscope's hooks: ``getattr(obj, attr)(*args)`` through a
    weak reference, so the module does not keep ``obj`` alive (gc can then remove the hook).

    A copy of the module (``copy.deepcopy``, or pickling the whole model, as ``torch.save(model)``
    does) gets a ``DetachedCall`` instead: the copy (an EMA or teacher model, say) is not watched,
    and the model stays picklable.
    """

    __slots__ = ("ref", "attr")

    def __init__(self, obj: Any, attr: str) -> None:
        self.ref, self.attr = weakref.ref(obj), attr

    def __call__(self, *args: Any) -> None:
        obj = self.ref()
        if obj is not None:
            getattr(obj, self.attr)(*args)

    def __deepcopy__(self, memo: dict[int, Any]) -> DetachedCall:
        return DetachedCall()

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return (DetachedCall, ())


class HookCall(WeakCall):
    """A ``Hook``'s own weak call: ``hook.fn(hook, *args)`` directly, one Python frame less per
    call than ``WeakCall`` + ``Hook._dispatch`` (the per-layer hot path)."""

    __slots__ = ()

    def __call__(self, *args: Any) -> None:
        hook = self.ref()
        if hook is not None:
            hook.fn(hook, *args)


class DetachedCall:
    """A copied module's leftover of an actscope hook: records nothing, removes itself when
    first called (a copy carries no actscope hook once it has run)."""

    def __call__(self, module: nn.Module, *args: Any) -> None:
        for hooks in (module._forward_hooks, module._forward_pre_hooks, module._backward_hooks):
            for key, fn in list(hooks.items()):
                if fn is self:
                    del hooks[key]


class Hook:
    """A forward (or backward) hook on one module; a context manager, removed at most once."""

    def __init__(self, module: nn.Module, fn: HookFn, kind: str = "forward") -> None:
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        if not isinstance(module, nn.Module):
            raise TypeError(f"Hook needs an nn.Module, got {type(module).__name__}")
        self.module, self.fn, self.kind = module, fn, kind
        self.removed = False
        # What the hook's owner keeps per hooked module (the recorder: a LayerState).
        self.state: Any = None
        # A bound method is a new object at every attribute access: key on (object, function).
        self._key = (id(module), kind, id(getattr(fn, "__self__", None)),
                     id(getattr(fn, "__func__", fn)))
        existing = _LIVE.get(self._key)
        if existing is not None and existing() is not None and not existing().removed:
            # The module already carries this function: share nothing, register nothing, so the
            # stats are counted once. This Hook is born removed and says so in its repr.
            self.removed, self._handle, self.duplicate = True, None, True
            return
        self.duplicate = False
        # Weak: the module must not keep the Hook alive, or gc could never remove it.
        call = HookCall(self, "_dispatch")
        if kind == "forward":
            self._handle = module.register_forward_hook(call)
        else:
            self._handle = module.register_full_backward_hook(call)
        _LIVE[self._key] = call.ref

    def _dispatch(self, mod: nn.Module, a: Any, b: Any) -> None:
        self.fn(self, mod, a, b)

    def remove(self) -> None:
        """Remove the hook; safe to call more than once."""
        if self.removed:
            return
        self.removed = True
        if self._handle is not None:
            self._handle.remove()
        if _LIVE.get(self._key) is not None and _LIVE[self._key]() in (self, None):
            del _LIVE[self._key]

    def __enter__(self) -> Hook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __del__(self) -> None:
        # A safety net only: actscope removes hooks explicitly (after_fit, with-blocks).
        if not getattr(self, "removed", True):
            self.remove()

    def __repr__(self) -> str:
        state = "duplicate, not registered" if self.duplicate else (
            "removed" if self.removed else "active")
        return f"Hook({type(self.module).__name__}, {self.kind}, {state})"


class Hooks:
    """A list of Hook, one per module; indexable like a list and removed as a whole."""

    def __init__(self, modules: Iterable[nn.Module] = (), fn: HookFn | None = None,
                 kind: str = "forward") -> None:
        modules = list(modules)
        if modules and fn is None:
            raise ValueError("Hooks needs fn to register on the modules; pass fn=...")
        self.items: list[Hook] = [Hook(m, fn, kind) for m in modules]

    @classmethod
    def from_hooks(cls, hooks: Iterable[Hook]) -> Hooks:
        """A Hooks container over existing Hook objects."""
        out = cls()
        out.items = list(hooks)
        return out

    def __getitem__(self, idx: int | slice | Sequence[int] | Sequence[bool]) -> Any:
        if isinstance(idx, int):
            return self.items[idx]
        if isinstance(idx, slice):
            return Hooks.from_hooks(self.items[idx])
        idx = list(idx.tolist() if hasattr(idx, "tolist") else idx)
        if idx and all(isinstance(i, bool) for i in idx):
            if len(idx) != len(self.items):
                raise IndexError(f"boolean mask has {len(idx)} entries for {len(self.items)} hooks")
            return Hooks.from_hooks(h for h, keep in zip(self.items, idx, strict=True) if keep)
        return Hooks.from_hooks(self.items[int(i)] for i in idx)

    def __delitem__(self, idx: int) -> None:
        self.items[idx].remove()
        del self.items[idx]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Hook]:
        return iter(self.items)

    def remove(self) -> None:
        """Remove every hook; safe to call more than once."""
        for h in self.items:
            h.remove()

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        shown = ", ".join(repr(h) for h in self.items[:10])
        more = f", ...({len(self.items) - 10} more)" if len(self.items) > 10 else ""
        return f"Hooks({len(self.items)} items: [{shown}{more}])"


def modules_by_type(model: nn.Module, *types: type) -> list[nn.Module]:
    """Every submodule (model included) that is an instance of one of ``types``."""
    if not types:
        raise ValueError("modules_by_type needs at least one type, e.g. nn.Conv2d")
    return [m for m in model.modules() if isinstance(m, types)]


def modules_by_name(model: nn.Module, pattern: str) -> list[nn.Module]:
    """Submodules whose qualified name (e.g. ``"0.1"``, ``"layers.3.act"``) matches the regex."""
    rx = re.compile(pattern)
    return [m for name, m in model.named_modules() if name and rx.fullmatch(name)]


def child_blocks(model: nn.Module) -> list[nn.Module]:
    """The direct children that hold parameters or sub-blocks (every block of a Sequential)."""
    return [m for m in model.children()
            if any(True for _ in m.parameters()) or len(list(m.children())) > 0]
