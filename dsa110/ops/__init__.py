"""Operations: jobs, executors, services, files on disk, system metrics."""
