import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "toolweaver_site.settings")
application = get_wsgi_application()

from toolweaver_site.heap import freeze_loaded_heap  # noqa: E402  (needs the apps loaded)

freeze_loaded_heap()
