"""Intake of hand-offs: Numero Verde webhook, partner phone and SMS, manual entry, cases."""
