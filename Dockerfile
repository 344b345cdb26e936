# polis-api against an external PostgreSQL (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
# Without the `embedded` extra: the database is always DATABASE_URL's here. Editable,
# so that the package finds migrations/ next to src/.
RUN pip install --no-cache-dir -e . && useradd --system --home /app polis && chown -R polis /app
USER polis

EXPOSE 8000
# DATABASE_URL and POLIS_JWT_SECRET come from the environment.
CMD ["sh", "-c", "polis-api migrate && exec polis-api serve --host 0.0.0.0 --port 8000 --workers ${WORKERS:-2}"]
