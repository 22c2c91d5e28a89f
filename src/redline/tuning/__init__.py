"""Tuning: the user's own, unchanged script measured under candidate settings in trial processes; the measured
choice is cached and `redline run` applies it."""
