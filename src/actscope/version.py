"""The version of actscope, in one place (config.json records it; pyproject has the same)."""

__version__ = "0.1.0"
