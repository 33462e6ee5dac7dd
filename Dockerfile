FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# collectstatic needs settings but no services: a throwaway key is enough at build time.
RUN SECRET_KEY=build-only DJANGO_DEBUG=0 python manage.py collectstatic --noinput -v 0

RUN useradd --create-home --uid 1000 app && mkdir -p /app/var /tmp/prometheus \
    && chown -R app /app/var /tmp/prometheus
USER app
EXPOSE 8000
CMD ["sh", "deploy/web.sh"]
