"""Peer fill: the endpoint other nodes read from, and the sources a fill reads (docs/peer-fill.md).

Nodes that share the central index fill from each other, so a cluster reads
each image from the origin once.  Only the node's own fill verifies what a
peer sends; nothing here is trusted on a peer's word.
"""
