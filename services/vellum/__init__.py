"""The Vellum side: where its CLI keeps its files, the lockfile, tokens, the platform API
and the registry of local assistants."""
