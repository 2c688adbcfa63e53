"""Shared infrastructure: settings, database, auth, audit, telephony, scheduler, i18n."""
