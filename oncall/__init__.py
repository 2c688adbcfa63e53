"""On call: operators, rotas, overrides, gaps, reminders and calendar feeds."""
