"""/review: the keyboard-first review page."""
