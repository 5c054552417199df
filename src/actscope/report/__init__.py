"""Pictures and pages of a run, read from its folder or a ``Telemetry`` (matplotlib on use only).

    run_view.py     RunView: a run folder read and validated
    publish.py      telemetry.npz + findings.json
    writer.py       write_run_report: the one report writer (check, publish, figures, page)
    figures.py      the report's figures: one list, each drawn once
    plots*.py       the drawing (the only matplotlib importers, with compare/plots.py)
    html.py         HTML primitives (escaping, tables, inline images)
    page.py         report.html
    folder.py       which folders a report may be written into
    compare/        compare.html: data, page, plots, write
"""
