"""Reading inbound mail: MIME, kind, new text, bounces, return dates, matching (pure)."""
