"""The feedsvc app as the serving benchmark runs it, plus a constant-bytes baseline endpoint.

The baseline goes through the same app, server and middleware as the feeds, so a feed's ratio to
it is the cost of feedsvc's own work.
"""

from flask import Response

from feedsvc import create_app

app = create_app()


@app.get("/bench/ping")
def ping() -> Response:
    return Response(b"pong\n", content_type="text/plain")
