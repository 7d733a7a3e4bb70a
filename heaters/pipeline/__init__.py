"""Pipeline plumbing shared by every stage: stage names, claims in Postgres, the stage runner."""
