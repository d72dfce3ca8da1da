"""The central index's database: its schema, its engine, its migrations.

Only the ``central`` driver and ``imagecache db`` use this package; it knows
SQLAlchemy Core, psycopg 3 and Alembic, and nothing of HTTP or of the cache's
files.  The migrations ship inside the package (``migrations/``), so an
installed imagecache can upgrade a database without a checkout.
"""
