"""Jobs: long tasks (backups) as records and their history, exports from runtimes, polling the
runtime's own jobs, verified downloads, and the repair tried when an export finds nothing
listening."""
