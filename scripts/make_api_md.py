"""Write docs/api.md, the user reference, from the public API's signatures and docstrings.

Run ``python scripts/make_api_md.py`` after changing a public name; the page groups the names by
the module that defines them, so a reader also learns where each one lives.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import actscope

EXTRA = [  # public names that are not re-exported from the package root
    ("actscope.recipe", ["build"]),
    ("actscope.config", ["FitConfig"]),
    ("actscope.errors", ["ActscopeError", "UsageError"]),
    ("actscope.runs", ["new_run_name", "read_config", "read_metrics", "read_recorder",
                       "read_findings", "read_lr_find", "is_locked"]),
    ("actscope.telemetry.record", ["TelemetryFileError"]),
    ("actscope.report.publish", ["publish_telemetry"]),
    ("actscope.report.plots", ["plot_stats", "plot_hist_heatmap", "plot_dead_share",
                               "save_figure"]),
    ("actscope.report.figures", ["save_run_plots"]),
    ("actscope.report.writer", ["write_run_report"]),
    ("actscope.telemetry.settings", ["TelemetrySettings"]),
    ("actscope.diagnosis.finding", ["format_findings"]),
    ("actscope.callbacks.tensorboard", ["TensorBoardCallback"]),
    ("actscope.integrations.lightning", ["ActscopeCallback"]),
    ("actscope.integrations.transformers", ["ActscopeCallback"]),
    ("actscope.integrations", ["MissingExtraError"]),
]
INTRO = """# actscope API reference

Every public name, grouped by the module that defines it (import it from there, or from
`actscope` where it is re-exported). Signatures and one-line summaries are taken from the code by
`scripts/make_api_md.py`; the guides in [index.md](index.md) explain how the pieces fit.
"""


def _entry(name: str, obj: object) -> str:
    try:
        sig = str(inspect.signature(obj)).replace(" -> 'None'", "").replace("'", "")
        # default values that are functions or classes: their name, not their address
        sig = re.sub(r"<(?:function|class) ([\w.]+)(?: at 0x[0-9a-f]+)?>", r"\1", sig)
    except (TypeError, ValueError):
        sig = ""
    if isinstance(obj, type) and issubclass(obj, BaseException):
        sig = ""
    doc = (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ")
    return f"- **`{name}{sig}`**  \n  {doc}"


def collect() -> dict[str, list[str]]:
    import importlib

    groups: dict[str, list[str]] = {}
    for name in sorted(actscope.__all__):
        obj = getattr(actscope, name)
        module = getattr(obj, "__module__", "actscope") or "actscope"
        groups.setdefault(module, []).append(_entry(name, obj))
    for module, names in EXTRA:
        mod = importlib.import_module(module)
        for name in names:
            groups.setdefault(module, []).append(_entry(name, getattr(mod, name)))
    return groups


def main() -> None:
    parts = [INTRO]
    for module, entries in sorted(collect().items()):
        parts.append(f"\n## `{module}`\n\n" + "\n".join(dict.fromkeys(entries)) + "\n")
    Path(__file__).resolve().parents[1].joinpath("docs", "api.md").write_text("".join(parts))


if __name__ == "__main__":
    main()
