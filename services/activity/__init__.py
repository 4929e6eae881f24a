"""What every assistant is doing and what it waits for (docs/protocol.md §7).

Owns the activity model (`model.py`: states with their evidence, the needs-you inbox's items,
answers and their records), the runtime's event envelopes parsed into it (`events.py`), the
per-assistant state machine that turns events and pending lists into an `Activity` and an inbox
(`tracker.py`), the runtime's interaction API (`client.py`: event stream, pending list, answers)
and the follower that keeps one event stream open per assistant (`follower.py`).
"""
