"""The report in a real headless browser: it loads, every image renders, the findings show.

Needs Chromium (Debian: ``apt-get install -y chromium``; elsewhere any Chrome/Chromium on PATH,
or set ACTSCOPE_CHROMIUM to its path). Skipped, saying so, when none is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from actscope.telemetry.report import write_report
from tests.telemetry.test_report import make_run


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


def dump_dom(browser: str, page: Path, profile: Path) -> str:
    """The DOM after load (scripts ran), from a sandboxed headless browser with no network use."""
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}",
           "--virtual-time-budget=5000", "--dump-dom", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    browser = find_browser()
    if browser is None:
        pytest.skip("no Chromium found (install with `apt-get install -y chromium`, or set "
                    "ACTSCOPE_CHROMIUM to a Chrome/Chromium executable)")
    run = make_run(tmp_path)
    page = write_report(run)
    dom = dump_dom(browser, page, tmp_path / "profile")
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    # Set by the page's own script on load: images that decoded with a real width.
    assert attrs.get("data-images-total") == "4", attrs
    assert attrs.get("data-images-loaded") == "4", attrs
    assert "93% of activations near zero at the end of training" in dom
    assert 'class="finding"' in dom
