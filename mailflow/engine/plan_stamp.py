"""The stamp of what planning an engagement depends on (light: read by every view)."""

from __future__ import annotations


def signature(loaded, eng: dict) -> str:  # noqa: ANN001 - a config.loading.Loaded
    """What planning an engagement depends on (its rules, the config, the engagement's
    revision, which every event about it bumps): a tick plans again when this changes, and
    what was kept with a plan (engine/stored_plan.py, desk/status.py) holds while it does not."""
    seq = loaded.sequence_for(eng)
    return f"{seq.digest}:{loaded.config_digest}:{eng.get('rev', 0)}"
