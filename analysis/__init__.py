"""Analyses built on the engine: cross tests, robustness, prediction, benchmark, t-SNE features,
Grad-CAM, the fingerprint study and their figures and reports.

Each module is the back-end of one entry script in ``eval/`` or ``visualize/``. Imports flow one
way: entry scripts -> ``analysis`` -> ``engine`` -> ``models`` / ``data`` / ``configs``.
"""
