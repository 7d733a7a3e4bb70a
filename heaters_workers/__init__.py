"""Background work: the Dramatiq broker, the actors, and the schedule."""
