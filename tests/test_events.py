from actscope.callback import Callback
from actscope.events import Event


def test_callback_has_exactly_one_method_per_event():
    handlers = {name for name in vars(Callback)
                if name.startswith(("before_", "after_")) and callable(getattr(Callback, name))}
    assert handlers == {ev.value for ev in Event}


def test_event_values_are_method_names():
    for ev in Event:
        assert ev.value == ev.name
