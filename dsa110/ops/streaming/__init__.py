"""The streaming service: the incoming-directory watcher, its record, and its supervisor."""
