"""The command line: ``manage.py projector | relay | sla | outbox``. Each command parses its
arguments and runs what the composition root (``config/bootstrap.py``) builds."""
