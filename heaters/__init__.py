"""Heaters: turn long videos into reviewed, exported, searchable clips."""
