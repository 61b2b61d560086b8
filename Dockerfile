# The Deskstream image: web/ASGI server, Celery worker and beat, relay and projectors
# (docker-compose.yml picks the command). Python 3.11 and Django 5.2 LTS (ADR 0002).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    DESKSTREAM_STATIC_ROOT=/app/var/static \
    DESKSTREAM_EMAIL_OUTBOX_DIR=/app/var/outbox

WORKDIR /app
RUN useradd --create-home --uid 10001 deskstream
COPY pyproject.toml README.md ./
COPY domain domain
COPY command_api command_api
COPY projections projections
COPY read_api read_api
COPY infra infra
COPY config config
COPY manage.py ./
RUN pip install . && mkdir -p var && chown -R deskstream /app/var
USER deskstream
EXPOSE 8000
CMD ["python", "-m", "config.launcher", "--host", "0.0.0.0", "--port", "8000", "--no-demo"]
