"""The command line: ``actscope fit | lr-find | report | norms | compare``.

One module per command (each short: the work lives in the library) plus ``parser`` (the argparse
tree and ``main``, where errors become exit codes) and ``flags`` (the shared flags). The console
script is ``actscope.cli:main``.
"""

from actscope.cli.flags import config_from_args
from actscope.cli.parser import build_parser, main
from actscope.errors import UsageError

__all__ = ["main", "build_parser", "config_from_args", "UsageError"]
