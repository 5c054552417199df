"""The compare page: data.py (runs read and matched), page.py (HTML), plots.py (figures),
write.py (``compare(runs, out)``, matplotlib on use only)."""
