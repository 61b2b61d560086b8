"""Automation settings an admin edits: SLA rules per priority, the business calendar, and the
automatic-assignment policy (Django tables and their admin-only REST endpoints)."""
