"""Local PostgreSQL, Redis and S3 servers for `make run` and the test suite (see services.py, stack.py)."""
