"""StepScalars: host numbers logged per optimizer step by a trainer, bounded like the records.

The HF Trainer's ``log_history`` (loss, lr, grad_norm, eval_*) arrives as host numbers after its
record was committed; ``result()`` gives each record the mean of the values logged at the steps
its span covers (``record.with_step_scalars``). Kept one entry per logged step, a run of
1,000,000 steps logged every step would hold a million dicts until the read-back (issue 24).

So entries hold sums and counts, and the store keeps at most twice ``max_records`` of them (the
records' own budget; twice, so the re-bucketing below runs once per ``max_records`` steps at
most). When full, the entries are re-bucketed by the records' spans as the host
store holds them now: the entries inside one record merge into one (sums and counts add, so the
record's mean stays exact: later coarsening only merges whole records, never splits one), and an
entry at a step no record covers is dropped (``result()`` would drop it too). Entries past the
last flushed record stay as they are (a flush chunk of them, usually); only if they exceed half
the budget (a very sparse ``every=``), adjacent ones merge in pairs, and such a merged entry
counts for the record of its first step (the one approximation: it may straddle two records).
Re-adding a step already inside a merged entry is ignored: the Trainer's train-end pass over
``log_history`` repeats what ``on_log`` gave, and must not count twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["StepScalars"]


class StepScalars:
    """Per-step host scalars as (first step, last step, {name: [sum, count]}), bounded."""

    def __init__(self, max_records: int) -> None:
        self.max_records = max_records
        # first step -> [last step, {name: [sum, count]}]; a single step has last == first
        self.entries: dict[int, list[Any]] = {}
        self._merged_until = -1  # the last step of any merged entry: a later step is new

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def _covering(self, step: int) -> int | None:
        """The first step of the merged entry whose span holds ``step``, if any."""
        if step > self._merged_until:  # steps arrive in order: the usual, O(1) answer
            return None
        for first, (last, _) in self.entries.items():
            if first < step <= last:
                return first
        return None

    def add(self, step: int, values: Mapping[str, float],
            spans: Callable[[], tuple[np.ndarray, np.ndarray] | None] | None = None) -> None:
        """Values logged at ``step`` (the same step again: the latest value per name wins);
        ``spans()``: the records' (first, last) iterations now, read when the budget is full."""
        step = int(step)
        if step not in self.entries and self._covering(step) is not None:
            return  # a repeat of a step already merged (see the module doc)
        last, sums = self.entries.setdefault(step, [step, {}])
        if last == step:  # a single step: overwrite, as the log dict it replaces did
            sums.update({str(k): [float(v), 1] for k, v in values.items()})
        if len(self.entries) > 2 * self.max_records:
            self._coarsen(spans() if spans is not None else None)

    def _coarsen(self, spans: tuple[np.ndarray, np.ndarray] | None) -> None:
        steps = sorted(self.entries)
        merged: dict[int, list[Any]] = {}
        pending = steps
        if spans is not None and len(spans[0]):
            starts, ends = (np.asarray(a, np.int64) for a in spans)
            pending = [s for s in steps if s > ends[-1]]
            for s in steps[: len(steps) - len(pending)]:
                j = int(np.searchsorted(starts, s, side="right")) - 1
                if j < 0 or s > ends[j]:
                    continue  # no record covers it: result() would drop it
                # keyed by the record's first step; spanning only the steps seen so far, so a
                # later step of the same record is still new (it merges at the next pass)
                self._merge_into(merged, int(starts[j]), self.entries[s][0], self.entries[s])
        if len(pending) > self.max_records // 2:  # only a sparse every= gets here
            for a, b in zip(pending[::2], pending[1::2], strict=False):
                self._merge_into(merged, a, self.entries[b][0], self.entries[a])
                self._merge_into(merged, a, self.entries[b][0], self.entries[b])
            pending = pending[-1:] if len(pending) % 2 else []
        for s in pending:
            merged[s] = self.entries[s]
        self.entries = dict(sorted(merged.items()))
        self._merged_until = max((e[0] for e in self.entries.values()), default=-1)

    @staticmethod
    def _merge_into(merged: dict[int, list[Any]], first: int, last: int, entry: list[Any]
                    ) -> None:
        target = merged.setdefault(first, [last, {}])
        target[0] = max(target[0], last, entry[0])
        for name, (total, count) in entry[1].items():
            acc = target[1].setdefault(name, [0.0, 0])
            acc[0] += total
            acc[1] += count

    def by_step(self) -> dict[int, dict[str, tuple[float, int]]]:
        """First step -> {name: (sum, count)}, for ``record.with_step_scalars``."""
        return {s: {k: (v[0], v[1]) for k, v in e[1].items()} for s, e in self.entries.items()}

    def means(self) -> dict[int, dict[str, float]]:
        """First step -> {name: mean of its logged values}."""
        return {s: {k: v[0] / v[1] for k, v in e[1].items()} for s, e in self.entries.items()}

    def to_json(self) -> str:
        """The entries as JSON (a checkpoint's string: ``weights_only`` loads it)."""
        return json.dumps([[s, e[0], e[1]] for s, e in self.entries.items()])

    def load_json(self, text: str, legacy: bool = False) -> None:
        """Restore ``to_json()``; ``legacy``: the older ``{step: {name: value}}`` format."""
        raw = json.loads(text)
        if legacy:
            self.entries = {int(s): [int(s), {k: [float(v), 1] for k, v in vals.items()}]
                            for s, vals in raw.items()}
        else:
            self.entries = {int(s): [int(last), {k: [float(v[0]), int(v[1])]
                                                 for k, v in vals.items()}]
                            for s, last, vals in raw}
        self._merged_until = max((e[0] for e in self.entries.values()), default=-1)
