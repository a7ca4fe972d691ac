"""The ceilings of PERFORMANCE.md: a minimal Django project with no middleware (bench/run.py)."""
