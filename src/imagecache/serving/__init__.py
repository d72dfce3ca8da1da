"""How the node serves connections: many cheap streams, explicit limits.

The WSGI layers below know nothing of this; anyone may run them in another
server.  Here: a gunicorn worker that reads request headers on its event
loop (with a deadline and size limits), answers past its connection limit
at once, keeps a lane for health and metrics, and sends cached files with
non-blocking ``sendfile`` from the loop, so a slow reader holds no thread.
"""
