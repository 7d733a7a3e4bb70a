"""Source videos: ingest, the pipeline stages that process them, and their state changes."""
