"""Glance config files as operators have them, for the tests of ``--config``.

:func:`glance_api_conf` is a ``glance-api.conf`` shaped like those Glance's
install guide and sample configuration show: comments, Keystone, a database,
multiple stores, the cache flavor and the cache options.  Only the options
imagecache shares are parameters; everything else is Glance's own and must be
listed as not used, never fatal.  :func:`glance_cache_conf` is the cache
tools' ``glance-cache.conf``.
"""

from __future__ import annotations

#: Secrets of the file: they must never appear in anything imagecache prints.
SECRETS = ("RABBIT_PASS", "GLANCE_DBPASS", "GLANCE_PASS")

_API = """\
# glance-api.conf -- rendered by configuration management, do not edit by hand.

[DEFAULT]
#
# From glance.api
#

# Set to true for DEBUG logging (oslo.log)
debug = False
log_file = /var/log/glance/glance-api.log
use_journal = true

bind_host = {bind_host}
bind_port = {bind_port}
workers = {workers}
backlog = 4096
client_socket_timeout = 900

transport_url = rabbit://openstack:RABBIT_PASS@controller
enabled_backends = fast:rbd, cheap:file
show_image_direct_url = True
enabled_import_methods = [glance-direct,web-download,copy-image]

# The URL other glance workers reach this one at
worker_self_reference_url = {node_url}

#
# Image cache (see the admin guide, "The Glance Image Cache")
#
image_cache_dir = {image_cache_dir}
image_cache_max_size = {image_cache_max_size}
image_cache_stall_time = {image_cache_stall_time}
image_cache_driver = {image_cache_driver}
image_cache_sqlite_db = {image_cache_sqlite_db}
cache_prefetcher_interval = {cache_prefetcher_interval}

[database]
connection = mysql+pymysql://glance:GLANCE_DBPASS@controller/glance

[keystone_authtoken]
www_authenticate_uri = http://controller:5000
auth_url = http://controller:5000
memcached_servers = controller:11211
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = glance
password = GLANCE_PASS

[paste_deploy]
flavor = keystone+cachemanagement

[glance_store]
default_backend = fast

[fast]
rbd_store_pool = images
rbd_store_user = glance
rbd_store_ceph_conf = /etc/ceph/ceph.conf
rbd_store_chunk_size = 8

[cheap]
filesystem_store_datadir = /var/lib/glance/images/

[os_glance_staging_store]
filesystem_store_datadir = /var/lib/glance/staging/

[os_glance_tasks_store]
filesystem_store_datadir = /var/lib/glance/tasks_work_dir/

[oslo_policy]
enforce_new_defaults = true
"""

_CACHE = """\
[DEFAULT]
# Options for glance-cache-pruner, -cleaner and -prefetcher (run from cron)
debug = false
log_file = /var/log/glance/image-cache.log
image_cache_dir = {image_cache_dir}
image_cache_max_size = {image_cache_max_size}
image_cache_stall_time = {image_cache_stall_time}
image_cache_driver = {image_cache_driver}
admin_user = glance
admin_password = GLANCE_PASS
admin_tenant_name = service
auth_url = http://controller:5000/v3
filesystem_store_datadir = /var/lib/glance/images/
"""

#: The values :func:`glance_api_conf` writes unless told otherwise.
API_DEFAULTS = {
    "bind_host": "127.0.0.1",
    "bind_port": "9292",
    "workers": "1",
    "node_url": "http://glance-1.example.org:9292",
    "image_cache_dir": "/var/lib/glance/image-cache/",
    "image_cache_max_size": "5368709120",
    "image_cache_stall_time": "3600",
    "image_cache_driver": "sqlite",
    "image_cache_sqlite_db": "glance-cache.db",
    "cache_prefetcher_interval": "60",
}

CACHE_DEFAULTS = {
    "image_cache_dir": "/var/lib/glance/image-cache/",
    "image_cache_max_size": "5368709120",
    "image_cache_stall_time": "3600",
    "image_cache_driver": "sqlite",
}


def glance_api_conf(extra: str = "", **values: object) -> str:
    """A realistic glance-api.conf; ``values`` replace :data:`API_DEFAULTS`, ``extra`` is appended."""
    return _API.format(**{**API_DEFAULTS, **{k: str(v) for k, v in values.items()}}) + extra


def glance_cache_conf(extra: str = "", **values: object) -> str:
    """A glance-cache.conf for the cache tools; ``values`` replace :data:`CACHE_DEFAULTS`."""
    return _CACHE.format(**{**CACHE_DEFAULTS, **{k: str(v) for k, v in values.items()}}) + extra
