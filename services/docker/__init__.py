"""Docker engines: reaching them, finding assistants' containers, following their events,
and waking, stopping and retiring containers."""
