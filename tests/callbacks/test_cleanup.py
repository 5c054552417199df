"""A failing before_fit: every shipped callback's after_fit still runs, safely, and the caller sees
the original error unchanged (issue 10, family 7: a refused checkpoint used to end in a traceback
about ProgressCallback's missing ``_printed``)."""

from __future__ import annotations

import pytest

from actscope.callback import Callback
from actscope.callbacks.lr_finder import LRFinderCallback
from tests.conftest import synth_learner
from tests.helpers import CALLBACK_FACTORIES as FACTORIES
from tests.helpers import shipped_callbacks


class BeforeFitFailed(Exception):
    """The deliberate error; nothing in actscope raises or catches this type."""


class AfterFitSeen(Callback):
    order = 1000  # after every shipped callback

    def __init__(self) -> None:
        self.ran = False

    def after_fit(self, learn) -> None:
        self.ran = True


def test_every_shipped_callback_has_a_factory():
    assert set(shipped_callbacks()) == set(FACTORIES)


@pytest.mark.parametrize("failing", sorted(FACTORIES))
def test_failing_before_fit_keeps_its_error_and_every_after_fit_runs(failing, tmp_path):
    cbs = [make(tmp_path) for make in FACTORIES.values()]
    broken = next(cb for cb in cbs if type(cb).__name__ == failing)

    def fail(self, learn) -> None:
        raise BeforeFitFailed(f"{failing}.before_fit failed")

    # A subclass, so that the Learner sees an overridden before_fit even on a class without one.
    broken.__class__ = type(f"Broken{failing}", (type(broken),), {"before_fit": fail})
    seen = AfterFitSeen()
    learn = synth_learner(cbs=[*cbs, seen])
    with pytest.raises(BeforeFitFailed) as info:
        learn.fit(2)
    error = info.value
    assert str(error) == f"{failing}.before_fit failed"
    assert getattr(error, "__notes__", []) == []  # no after_fit failed on the way out
    assert error.__context__ is None and error.__cause__ is None
    assert seen.ran
    # the learner is usable again: the same callbacks, now with a working before_fit
    broken.__class__ = type(broken).__mro__[1]
    if failing != "LRFinderCallback":
        learn.remove_cbs([cb for cb in learn.cbs if isinstance(cb, LRFinderCallback)])
        learn.fit(1)


def test_after_fit_failures_become_notes_on_the_original_error():
    class Boom(Callback):
        order = 5

        def before_fit(self, learn) -> None:
            raise BeforeFitFailed("the real problem")

    class BadCleanup(Callback):
        def __init__(self, tag: str) -> None:
            self.tag = tag

        def after_fit(self, learn) -> None:
            raise RuntimeError(f"cleanup {self.tag} broke")

    seen = AfterFitSeen()
    learn = synth_learner(cbs=[BadCleanup("a"), Boom(), BadCleanup("b"), seen])
    with pytest.raises(BeforeFitFailed, match="the real problem") as info:
        learn.fit(1)
    notes = info.value.__notes__
    assert len(notes) == 2 and "cleanup a broke" in notes[0] and "cleanup b broke" in notes[1]
    assert all(n.startswith("BadCleanup.after_fit also failed: RuntimeError") for n in notes)
    assert seen.ran  # the cleanups after a failing one still ran

    # Without an error in flight, the first cleanup failure is raised (after all cleanups ran).
    seen2 = AfterFitSeen()
    learn = synth_learner(cbs=[BadCleanup("c"), seen2])
    with pytest.raises(RuntimeError, match="cleanup c broke"):
        learn.fit(1)
    assert seen2.ran
