"""roost's terminal UI and command line: the App, its screens, commands and styles."""
