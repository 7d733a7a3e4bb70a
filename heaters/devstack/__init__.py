"""Local PostgreSQL, Redis and S3 servers, run as managed processes (no Docker, no systemd needed).

Why this lives in the product package: `make run` runs `heaters up`, which starts these servers
(``stack.LocalStack``) unless DATABASE_URL, REDIS_URL or S3_ENDPOINT_URL point elsewhere, so an installed
`heaters` must carry them. The test suite (tests/fixtures/services.py) and the benchmarks (bench/) start
the same servers, so they run against real PostgreSQL/pgvector, Redis and an S3 that checks signatures,
never against fakes (DESIGN.md §9). Production never imports this package.

One module per server: ``service`` (what they share: ManagedService, ServiceError, free_port),
``postgres``, ``redis``, ``seaweed`` (S3), and ``stack`` (the three together for `make run`).
"""
