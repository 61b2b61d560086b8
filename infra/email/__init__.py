"""E-mail: the ``EmailSender`` port with its SMTP and local-outbox adapters, the editable
templates (``EmailTemplate``, rendered safely with a fixed set of placeholders) and their
admin endpoints. See ``docs/notifications.md``."""
