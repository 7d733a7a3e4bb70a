"""One error hierarchy, so callers can tell permanent failures from transient ones."""

from __future__ import annotations


class HeatersError(Exception):
    """Root of every error Heaters raises on purpose; its message is meant for a human."""


class ConfigError(HeatersError):
    """The environment does not describe a runnable configuration."""


class NotFound(HeatersError):
    """A row the caller named does not exist."""


class InvalidTransition(HeatersError):
    """A state change was asked for from a state that does not allow it."""

    def __init__(self, entity: str, entity_id: int, to_state: str, current: str | None) -> None:
        self.entity, self.entity_id, self.to_state, self.current = entity, entity_id, to_state, current
        where = f"it is {current}" if current else "it does not exist"
        super().__init__(f"{entity} {entity_id} cannot move to {to_state}: {where}")


class PermanentError(HeatersError):
    """Retrying will not help (bad input, unsupported media): fail the work at once."""


class TransientError(HeatersError):
    """Worth another attempt later (network, a dependency restarting)."""


class LeaseLost(HeatersError):
    """This worker's claim expired and another worker took it: stop, and write nothing more."""
