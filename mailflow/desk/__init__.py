"""Use cases the CLI calls: run a tick, poll, change engagements and drafts, check, views."""
