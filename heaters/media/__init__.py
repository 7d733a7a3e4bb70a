"""Adapters to FFmpeg, ffprobe and PySceneDetect: argv builders, the one subprocess runner, probing, cuts."""
