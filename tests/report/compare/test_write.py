"""`actscope compare` on two real short MNIST runs: what the page shows, and every bad input."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

import actscope
from actscope.cli import main
from actscope.errors import ActscopeError
from actscope.report.compare.data import differing_settings, load_runs, metrics_rows
from actscope.report.compare.write import compare
from actscope.runs.lock import RunLock
from tests.conftest import find_mnist_dir

PNG = b"\x89PNG\r\n\x1a\n"
# Two runs that differ the way the lesson's do: the default recipe, and plain ReLU at lr 0.9
# without BatchNorm (smaller model, two epochs: different layers and lengths on purpose).
GOOD = ["--limit", "1000", "--epochs", "1", "--nfs", "8,16,32"]
BAD = ["--limit", "1000", "--epochs", "2", "--nfs", "8,16", "--lr", "0.9", "--norm", "none",
       "--act", "relu", "--sched", "constant"]


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two finished `actscope fit` runs on the first 1,000 MNIST images (made once a session)."""
    data = find_mnist_dir()
    if data is None:
        pytest.skip("real MNIST files not found: set ACTSCOPE_MNIST_DIR")
    root = tmp_path_factory.mktemp("compare_runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is faster on a busy box, same numbers
    try:
        for name, flags in (("good", GOOD), ("bad", BAD)):
            code = main(["fit", "--data", str(data), *flags, "--no-progress", "--out",
                         str(root / name)])
            assert code == 0
    finally:
        torch.set_num_threads(threads)
    return root / "good", root / "bad"


def images(text: str) -> dict[str, bytes]:
    return {alt: base64.b64decode(data) for alt, data in
            re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', text)}


def test_compare_page_of_two_real_runs(real_runs, tmp_path):
    good, bad = real_runs
    path = compare([good, bad], tmp_path / "cmp")
    assert path == tmp_path / "cmp" / "compare.html"
    text = path.read_text()
    # Self-contained: every image inline, nothing fetched.
    assert "<link" not in text and "http" not in text
    imgs = images(text)
    assert all(png[:8] == PNG for png in imgs.values())
    assert {"metrics", "mean per layer", "std per layer", "dead share per layer",
            "histograms 1"} <= set(imgs)
    # Only the settings that differ, never where the run was written.
    settings = text[text.index('id="settings"'):text.index("</table>", text.index('id="settings"'))]
    for key in ("<td class=\"text\">lr</td>", "<td class=\"text\">norm</td>",
                "<td class=\"text\">act</td>", "<td class=\"text\">nfs</td>",
                "<td class=\"text\">epochs</td>", "<td class=\"text\">sched</td>"):
        assert key in settings
    for same in (">bs<", ">seed<", ">limit<", ">out<", ">wd<"):
        assert same not in settings
    # Each run's saved findings in its own column.
    for run in (good, bad):
        for finding in json.loads((run / "findings.json").read_text()):
            assert finding.replace("'", "&#x27;") in text
    # One metrics table: the good run has the best validation accuracy of epoch 0.
    header, rows, classes = metrics_rows(load_runs([good, bad]))
    col = header.index("valid_accuracy")
    epoch0 = [(r[1], c[col]) for r, c in zip(rows, classes, strict=True) if r[0] == 0]
    assert epoch0 == [("A: good", "best"), ("B: bad", "")]
    assert [r[:2] for r in rows] == [[0, "A: good"], [0, "B: bad"], [1, "B: bad"]]
    assert '<td class="best">' in text
    # Layers matched by name; the good run's third conv block has no partner.
    assert 'id="unmatched"' in text and "2 conv 16→32" in text


def test_cli_compare_fraction_axis_and_python_call(real_runs, tmp_path, capsys):
    good, bad = real_runs
    assert main(["compare", str(good), str(bad), "--out", str(tmp_path / "c"), "--x",
                 "fraction"]) == 0
    assert capsys.readouterr().out.strip() == f"compare: {tmp_path / 'c' / 'compare.html'}"
    # Runs of different lengths (32 and 16 batches an epoch here) end at 1.0 on this axis.
    from actscope.report.compare.plots import plot_compare_lines, plot_compare_metrics

    runs = load_runs([good, bad])
    train = plot_compare_metrics(runs, "fraction").axes[2]
    assert train.get_xlabel() == "fraction of training"
    assert [max(line.get_xdata()) for line in train.lines] == pytest.approx([1.0] * 4)
    mean = plot_compare_lines(runs, ["0 conv 1→8"], "mean", "mean", "fraction").axes[0]
    assert max(mean.lines[0].get_xdata()) <= 1.0 and max(mean.lines[1].get_xdata()) <= 1.0
    assert actscope.compare is compare
    assert actscope.compare([good], tmp_path / "one").name == "compare.html"


def test_runs_without_telemetry_still_compare_metrics(real_runs, tmp_path):
    good, bad = real_runs
    bare = tmp_path / "bare"
    shutil.copytree(bad, bare)
    for name in ("telemetry.npz", "findings.json"):
        (bare / name).unlink()
    shutil.rmtree(bare / "plots")
    text = compare([good, bare], tmp_path / "cmp").read_text()
    assert "no telemetry" in text and 'id="metrics"' in text
    assert "metrics" in images(text)
    assert [s for s, _ in differing_settings(load_runs([good, bare]))]  # settings still differ


def test_a_watch_folder_compares_with_a_fit_run(real_runs, tmp_path):
    """telemetry.npz + findings.json only (watch().report(), the Lightning/HF callbacks)."""
    good, _ = real_runs
    watch = tmp_path / "watch"
    watch.mkdir()
    for name in ("telemetry.npz", "findings.json"):
        shutil.copy(good / name, watch / name)
    text = compare([good, watch], tmp_path / "cmp").read_text()
    assert "histograms 1" in images(text) and 'id="unmatched"' not in text


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints", "plots", "*.html",
                                                            "model.safetensors"))
    return dst


def _write(name: str, content: bytes):
    def damage(run: Path) -> None:
        (run / name).write_bytes(content)
    return damage


BAD_INPUTS = {
    "not-a-run": (lambda run: [p.unlink() for p in run.iterdir() if p.is_file()]
                  and (run / "notes.txt").write_text("mine"), "not an actscope run"),
    "missing": (lambda run: shutil.rmtree(run), "does not exist"),
    "running": (lambda run: (run / "RUNNING").touch(), "not a finished run"),
    "config-list": (_write("config.json", b"[]"), "config.json"),
    "config-garbage": (_write("config.json", b"\x00\xff{"), "config.json"),
    "metrics-text": (_write("metrics.csv", b"epoch,valid_loss\n0,low\n"), "metrics.csv"),
    "metrics-short-row": (_write("metrics.csv", b"epoch,valid_loss\n0\n"), "metrics.csv"),
    "telemetry-empty": (_write("telemetry.npz", b""), "telemetry.npz"),
    "telemetry-truncated": (lambda run: (run / "telemetry.npz").write_bytes(
        (run / "telemetry.npz").read_bytes()[:300]), "telemetry.npz"),
    "recorder-not-npz": (_write("recorder.npz", b"hello"), "recorder.npz"),
    "findings-object": (_write("findings.json", b'{"dead": true}'), "findings.json"),
    "findings-numbers": (_write("findings.json", b"[1, 2]"), "findings.json"),
    "lr-find-garbage": (_write("lr_find.npz", b"PK\x03\x04"), "lr_find.npz"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_run_is_one_line_exit_2_and_nothing_written(real_runs, tmp_path, capsys, case):
    good, _ = real_runs
    damage, expected = BAD_INPUTS[case]
    victim = _copy(good, tmp_path / "victim")
    damage(victim)
    out = tmp_path / "out"
    assert main(["compare", str(good), str(victim), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err, err
    assert not out.exists()


def test_live_run_is_refused(real_runs, tmp_path, capsys):
    good, _ = real_runs
    live = _copy(good, tmp_path / "live")
    with RunLock(live):
        assert main(["compare", str(good), str(live), "--out", str(tmp_path / "out")]) == 2
    assert "a live process is writing it" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["nine-runs", "twice", "out-is-file", "bad-x", "no-runs"])
def test_bad_arguments_exit_2(real_runs, tmp_path, capsys, case):
    good, bad = real_runs
    (tmp_path / "file").write_text("x")
    nine = [str(_copy(good, tmp_path / f"r{i}")) for i in range(9)] if case == "nine-runs" else []
    argv = {"nine-runs": nine,
            "twice": [str(good), str(good)],
            "out-is-file": [str(good), str(bad)],
            "bad-x": [str(good), str(bad), "--x", "epoch"],
            "no-runs": []}[case]
    out = tmp_path / ("file" if case == "out-is-file" else "out")
    assert main(["compare", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "error" in err[-1]
    if case not in ("bad-x", "no-runs"):  # argparse's own errors print the usage line first
        assert len(err) == 1
    assert not (tmp_path / "out").exists() and (tmp_path / "file").read_text() == "x"


def test_python_call_errors_are_actscope_errors(real_runs, tmp_path):
    good, _ = real_runs
    with pytest.raises(ActscopeError, match="1 to 8 runs"):
        compare([good] * 9, tmp_path / "out")
    with pytest.raises(ActscopeError, match="x axis"):
        compare([good], tmp_path / "out", x="epochs")
    assert not (tmp_path / "out").exists()


def test_a_users_compare_html_is_never_replaced_but_an_earlier_one_is(real_runs, tmp_path,
                                                                      capsys):
    good, bad = real_runs
    out = tmp_path / "mine"
    out.mkdir()
    (out / "compare.html").write_text("my own notes")
    assert main(["compare", str(good), str(bad), "--out", str(out)]) == 2
    assert "was not written by actscope compare" in capsys.readouterr().err
    assert (out / "compare.html").read_text() == "my own notes"
    again = tmp_path / "again"
    assert main(["compare", str(good), "--out", str(again)]) == 0
    assert main(["compare", str(good), str(bad), "--out", str(again)]) == 0  # its own page


def test_an_interrupted_lr_find_folder_is_not_sent_to_fit_resume(real_runs, tmp_path, capsys):
    lrf = tmp_path / "lrf"
    assert main(["lr-find", "--dataset", "digits", "--limit", "300", "--bs", "32", "--num-it",
                 "8", "--no-progress", "--out", str(lrf)]) == 0
    (lrf / "RUNNING").touch()  # as if it had been killed
    capsys.readouterr()
    assert main(["compare", str(real_runs[0]), str(lrf), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "actscope lr-find --out" in err and "fit --resume" not in err
