"""Terminal sessions without a screen: the emulator (pyte, made fast and complete), the
backends that carry a session's bytes (a local PTY, a Docker exec, a managed assistant's
remote session), and the asciicast recording of what a pane shows."""
