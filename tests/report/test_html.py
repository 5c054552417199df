"""Markup in every field of every file report.html and compare.html read stays text (issue 10 §12).

Each payload goes into the folder name, config.json (keys and values, settings and the rest),
the metrics.csv header, findings.json, the telemetry's layer names and every meta field, and
the array names of recorder.npz and lr_find.npz. The page must show none of it as markup: the
only <script> is the page's own, no payload appears unescaped, and the escaped text is there.
"""

from __future__ import annotations

import html
import json

import numpy as np
import pytest

from actscope.errors import ActscopeError
from actscope.report.compare.write import compare
from actscope.report.page import render_report
from actscope.telemetry.record import Telemetry

PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>',
            "'><svg onload=alert(3)>", "$\\frac{<b>}{x}$"]


def hostile_run(parent, payload: str, tag: str):
    run = parent / f"run{tag}{payload.replace('/', '_')}"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({
        "settings": {"lr": 0.1, "note": payload, payload: payload, "nested": {payload: [payload]},
                     "tag": tag},
        "seed": 1, "versions": {"torch": payload, payload: "1"}, payload: {payload: payload}}))
    quoted = payload.replace('"', '""')  # CSV quoting: the header field is the payload itself
    (run / "metrics.csv").write_text(f'epoch,valid_accuracy,"{quoted}"\n0,0.5,1.0\n1,0.6,2.0\n')
    np.savez(run / "recorder.npz", lrs=np.full(20, 0.1), losses=np.linspace(2, 1, 20),
             **{payload.replace("/", "_"): np.ones(20)})
    (run / "findings.json").write_text(json.dumps([payload, f"layer {payload}: dead"]))
    n, L = 12, 2
    Telemetry(names=[payload, f"1 {payload}"], iters=np.arange(n),
              mean=np.zeros((L, n), np.float32), std=np.ones((L, n), np.float32),
              hist=np.ones((L, n, 8), np.int32), hist_range=np.tile([-1.0, 1.0], (L, 1)),
              dead=np.full((L, n), 0.2, np.float32),
              meta={"scope": payload, payload: payload}
              ).save(run / "telemetry.npz")
    np.savez(run / "lr_find.npz", lrs=np.geomspace(1e-4, 1, 20), losses=np.ones(20),
             suggestion=np.array(0.01), **{f"suggestion_{payload.replace('/', '_')}": 0.1})
    return run


def assert_safe(text: str, payload: str) -> None:
    assert text.count("<script>") == 1  # the page's own image counter, nothing else
    assert payload not in text
    for bad in ("<img src=x", "<svg onload", "<b>"):
        assert bad not in text
    # The payload is still shown, as text.
    assert html.escape(payload, quote=True) in text


@pytest.mark.parametrize("payload", PAYLOADS)
def test_report_escapes_every_field(tmp_path, payload):
    text = render_report(hostile_run(tmp_path, payload, "A"))
    assert_safe(text, payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_compare_escapes_every_field(tmp_path, payload):
    a = hostile_run(tmp_path / "a", payload, "A")
    b = hostile_run(tmp_path / "b", payload, "B")
    text = compare([a, b], tmp_path / "out").read_text()
    assert_safe(text, payload)


def test_markup_where_a_number_belongs_is_refused(tmp_path):
    """metrics.csv values must be numbers: markup there is a damaged file, not page content."""
    run = hostile_run(tmp_path, PAYLOADS[0], "A")
    (run / "metrics.csv").write_text(f"epoch,valid_accuracy\n0,{PAYLOADS[1]}\n")
    with pytest.raises(ActscopeError, match="metrics.csv"):
        render_report(run)
    with pytest.raises(ActscopeError, match="metrics.csv"):
        compare([run], tmp_path / "out")
    assert not (tmp_path / "out").exists()
