"""Coding agents (Claude Code, Codex, Gemini CLI, ...) running in tmux panes: what each is doing,
with the evidence it rests on, and the prompts they wait on (the same `Activity` and inbox
`Interaction` as Vellum assistants, services/activity/model.py).

Evidence, best first: the events the agents' own hooks report (`roost hook AGENT`, recorded by
`hook.py` and `spool.py`, installed in their settings by `install.py`); what tmux says of every
pane (title, bell, last output, current command); screen rules (`screens.py`) read from a pane's
screen only when the rest is ambiguous or stale; the pane's process alive or dead. `watch.py`
combines them per pane and per tmux session; `answer.py` types an answer into a pane after
checking that the prompt is still on its screen.

Nothing here imports more than the standard library at module level in `hook.py` and
`spool.py`: the hook runs on every agent event and must start in a few tens of milliseconds.
"""
