"""Turning a stage and an engagement into an email: templates, CSS, MIME (pure)."""
