"""HTTP primitives without policy.

Protocol logic (Range and If-Range, file-range bodies) that knows nothing of
images, caches or authorization, so that every layer above answers the same
request the same way.  ``imagecache.cache`` never imports from here.
"""
