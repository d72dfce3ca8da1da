"""Benchmarks of imagecache, run as ``python -m bench <scenario>``.

Each scenario starts its own servers on loopback (:mod:`bench.server`),
drives them over plain HTTP (:mod:`bench.http`), summarises the runs
(:mod:`bench.stats`) and prints a markdown table (:mod:`bench.report`).

Scenarios:

* ``herd`` (:mod:`bench.herd`): N clients ask at once for one uncached
  image; how long until all have it, and how often the image store was read.
"""
