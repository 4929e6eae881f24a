"""Terminal sessions without a screen: the emulator (pyte, made fast and complete) and the
backends that carry a session's bytes (a local PTY here; Docker and remote sessions later)."""
