"""Settings for the Token & Credit Portal, all read from the environment: the platform's
(settings/platform.py) and the portal's own services and limits (settings/services.py).

Every variable is listed in `.env.example`. `DJANGO_ENV=production` switches on the
production checks: a real SECRET_KEY and ALLOWED_HOSTS are required and DEBUG is off.
"""

from portal.settings.platform import *  # noqa: F403
from portal.settings.services import *  # noqa: F403
