"""Jobs: long tasks (backups) as records and their history, exports from runtimes, verified
downloads, and the repair tried when an export finds nothing listening."""
