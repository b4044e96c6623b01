"""The HTTP edge: what one client may cost before the API sees its request.

- ``bodies``: per-route request body limits (413) and the body deadline (408), as ASGI middleware.
- ``admission``: the cap on requests handled at once (503 + Retry-After), as ASGI middleware.
- ``protocol``: uvicorn's h11 protocol with a header timeout and a cap on open connections.
- ``budget``: a log line per kind of refusal, at most once per interval (a flood is not a log flood).

Settings: ``server.limits`` (``videohub/settings/http.py``).
"""
