class SessionActivityMiddleware:
    """Makes SESSION_COOKIE_AGE an idle timeout that only a person's requests extend.

    Each request a person makes re-saves the session (pushing its expiry out); the
    dashboard's background auto-refresh, marked with X-Auto-Refresh, does not, so a tab left
    open still logs out after the idle time. Listed after SessionMiddleware, so it marks the
    session before SessionMiddleware decides whether to save it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if (
            session is not None
            and not session.is_empty()
            and request.headers.get("X-Auto-Refresh") != "1"
            and response.status_code != 500
        ):
            session.modified = True
        return response


class PrivatePagesNoStoreMiddleware:
    """Pages answered to a logged-in person (and downloads), and the API's answers to a
    program's key (an Authorization header), are never stored by the browser or a shared
    cache: balances must not stay readable in a cache after logout."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        private = (user is not None and user.is_authenticated) or bool(
            request.META.get("HTTP_AUTHORIZATION")
        )
        if private and not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        return response
