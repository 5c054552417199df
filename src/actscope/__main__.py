"""``python -m actscope`` runs the command-line interface."""

import sys

try:
    from actscope.cli import main
except KeyboardInterrupt:  # Ctrl-C while torch is imported: the same one line as later
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("actscope: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
