"""Server plumbing: the launcher of ``make run``, Django's ASGI handler with one thread hop,
uvicorn's protocol writing head and body at once, synchronous middleware, routing by method,
the web app's index and build, and the shutdown hooks. Wired by ``config/``."""
