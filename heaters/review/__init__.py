"""Review: the queue, leases, the actions and their undo."""
