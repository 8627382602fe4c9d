"""Rewrite rules: pure functions ``plan -> plan``, one per module (see :mod:`ebr.planning.planner`)."""
