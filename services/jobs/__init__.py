"""Jobs: long tasks (backups, restores) as records and their history, the calls they make of a
runtime (runtime.py), exports and imports, polling the runtime's own jobs, verified downloads,
and the repair tried when an export finds nothing listening."""
