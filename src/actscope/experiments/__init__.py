"""The lesson's experiments as re-runnable commands (``actscope norms``)."""
