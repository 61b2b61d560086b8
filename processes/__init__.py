"""Process managers and delivery: what reacts to the event log with commands or side effects.

Automatic assignment issues ``assign_ticket``; the SLA check records ``SlaBreached``; the
notification delivery sends the outbox's e-mails; the runtime follows the log with every
projector (threads of one process under ``make run``). Their dependencies (the application,
the stores, the clock, the e-mail sender) are handed in by the composition root,
``config/bootstrap.py``.
"""
