"""The durable job queue: kinds, the database side, workers and executors."""
