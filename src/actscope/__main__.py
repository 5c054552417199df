"""``python -m actscope`` runs the command-line interface."""

import sys

from actscope.cli import main

sys.exit(main())
