"""The small core every domain stands on: errors, the clock, paths, config, files read from
outside, the rules of every HTTP request, logs, and roost's own state database."""
