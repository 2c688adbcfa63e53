"""Routing: province resolution, dispatch and escalation of cases to the on-call chain."""
