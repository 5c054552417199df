"""report.html and compare.html in a real headless browser: every image decodes and is visible.

Needs Chromium (Debian: ``apt-get install -y chromium``; elsewhere any Chrome/Chromium on PATH,
or set ACTSCOPE_CHROMIUM to its path). Skipped, saying so, when none is installed, unless
ACTSCOPE_REQUIRE_BROWSER is set (CI sets it: there a missing browser is a failure).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from actscope.report.compare.write import compare
from actscope.report.figures import save_run_plots
from actscope.report.page import write_page as write_report
from tests.report.test_page import make_run
from tests.telemetry.fakes import run_folder, telemetry

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


def find_browser() -> str | None:
    """A Chromium-family executable: $ACTSCOPE_CHROMIUM, /usr/bin/chromium, or one on PATH."""
    env = os.environ.get("ACTSCOPE_CHROMIUM")
    if env and Path(env).exists():
        return env
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def browser() -> str:
    found = find_browser()
    if found is None:
        if os.environ.get("ACTSCOPE_REQUIRE_BROWSER"):
            pytest.fail("ACTSCOPE_REQUIRE_BROWSER is set but no Chromium was found")
        pytest.skip("no Chromium found (install with `apt-get install -y chromium`, or set "
                    "ACTSCOPE_CHROMIUM to a Chrome/Chromium executable)")
    return found


def _run(browser: str, page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """A sandboxed headless browser with no network use; scripts run, time is virtual."""
    cmd = [browser, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args,
           page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def dump_dom(browser: str, page: Path, profile: Path) -> str:
    """The DOM after load (after the page's own script ran)."""
    return _run(browser, page, profile, "--window-size=1400,2000", "--dump-dom").stdout


def body_attrs(dom: str) -> dict[str, str]:
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))


def check_images(browser: str, page: Path, tmp_path: Path) -> str:
    """Every <img> decoded (naturalWidth > 0) and has a non-empty box; a screenshot is taken."""
    n = page.read_text().count("<img ")
    assert n > 0
    dom = dump_dom(browser, page, tmp_path / "profile")
    attrs = body_attrs(dom)
    # Set by the page's own script on load.
    assert attrs.get("data-images-total") == str(n), attrs
    assert attrs.get("data-images-loaded") == str(n), attrs
    assert attrs.get("data-images-visible") == str(n), attrs
    shot = tmp_path / f"{page.stem}.png"
    _run(browser, page, tmp_path / "profile", "--window-size=1400,3000", f"--screenshot={shot}")
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1400, 3000)
        low, high = im.convert("L").getextrema()
    assert high - low > 100  # not a blank page: text and plots are drawn
    return dom


@pytest.mark.slow
def test_report_renders_in_headless_chromium(browser, tmp_path):
    run = make_run(tmp_path)
    save_run_plots(run)
    dom = check_images(browser, write_report(run), tmp_path)
    assert body_attrs(dom)["data-images-total"] == "5"
    assert "93% of activations near zero at the end of training" in dom
    assert 'class="finding"' in dom


@pytest.mark.slow
def test_compare_renders_in_headless_chromium(browser, tmp_path):
    a = run_folder(tmp_path / "a", telemetry(4, 60, overflow=True, channels=8, seed=1), lr=0.4)
    b = run_folder(tmp_path / "b", telemetry(3, 90, lo=-1, hi=12, channels=8, seed=2), lr=0.9,
                   epochs=3, acc=0.5)
    c = run_folder(tmp_path / "c", None, lr=0.1)
    page = compare([a, b, c], tmp_path / "cmp")
    dom = check_images(browser, page, tmp_path)
    assert body_attrs(dom)["data-runs"] == "3"
    assert 'id="settings"' in dom and 'id="metrics"' in dom and 'id="findings"' in dom
    assert 'id="unmatched"' in dom  # layer 3 is only in run a


@pytest.mark.slow
def test_new_panels_and_notebook_html_render_in_headless_chromium(browser, tmp_path):
    # A watch()-like run: scalars, signals, per-context dead share; and the notebook fragment.
    import dataclasses

    from actscope.report.html import page as page_html
    from actscope.report.notebook import telemetry_html
    from actscope.report.writer import write_run_report
    from benchmarks.report_speed import synthetic

    t = synthetic(3, 80, per_record=False)
    ctx = {"layers": {n: {"zero_floored": i == 0} for i, n in enumerate(t.names)}}
    t = dataclasses.replace(t, meta={**t.meta, "context": ctx})
    page = write_run_report(tmp_path / "w", t, writer="watch")
    dom = check_images(browser, page, tmp_path)
    assert int(body_attrs(dom)["data-images-total"]) >= 5
    assert 'alt="scalars"' in dom and 'alt="signals"' in dom
    nb = tmp_path / "nb.html"
    nb.write_text(page_html("notebook", telemetry_html(t)), encoding="utf-8")
    check_images(browser, nb, tmp_path)
