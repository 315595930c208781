"""WSGI entry point (gunicorn cfadmin.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cfadmin.settings")
application = get_wsgi_application()
