"""Reporting: turn snapshots, plans and findings into text for people (JSON comes from to_dict)."""
