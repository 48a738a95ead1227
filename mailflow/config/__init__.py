"""What the consultant writes: mailflow.toml, rule files, engagement files (validated)."""
