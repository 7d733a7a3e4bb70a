"""Users, password hashing and signed session tokens."""
