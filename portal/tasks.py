from celery import shared_task


@shared_task(name="portal.ping")
def ping() -> str:
    """Answers "pong": lets a health check or a test prove a worker is consuming."""
    return "pong"
