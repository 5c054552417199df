"""An integration imported without its package says which extra installs it, in one line."""

from __future__ import annotations

import pytest

from actscope.errors import ActscopeError
from actscope.integrations import MissingExtraError, require


def test_missing_package_names_the_extra():
    with pytest.raises(MissingExtraError) as info:
        require("actscope_no_such_package", "lightning")
    msg = str(info.value)
    assert isinstance(info.value, ActscopeError) and isinstance(info.value, ImportError)
    assert "pip install 'actscope[lightning]'" in msg and "\n" not in msg


def test_bad_settings_fail_when_the_callback_is_made():
    pytest.importorskip("lightning.pytorch")
    from actscope.integrations.lightning import ActscopeCallback

    for bad in ({"every": 0}, {"every": True}, {"bins": 1}):
        with pytest.raises(ActscopeError):
            ActscopeCallback(**bad)
