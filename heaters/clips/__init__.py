"""Clips: the reviewable pieces of a video, derived from its cuts."""
