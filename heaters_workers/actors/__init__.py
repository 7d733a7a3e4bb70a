"""Every actor module, imported so the worker and the scheduler declare them all."""

from heaters_workers.actors import clips, playback, schedule, videos  # noqa: F401
