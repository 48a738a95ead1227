"""Talking to mail servers: SMTP, IMAP polling and Sent copies, TLS, secrets, the sink."""
