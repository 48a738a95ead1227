"""The engine: records and their lifecycle, the planner, and the decisions of a tick."""
