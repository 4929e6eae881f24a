"""The Vellum side: where its CLI keeps its files, the lockfile, tokens, how roost
authenticates to runtimes and the platform, the platform API and the registry of local
assistants."""
