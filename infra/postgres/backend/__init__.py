"""Django's PostgreSQL backend, without the work a pooled connection does not use
(``DATABASES['default']['ENGINE']``, see ``base``)."""
