"""A corpus split over shards: the layout on disk, writing a shard, a shard's replica and the router.

Nothing here imports Ray: ``cluster.ray_build`` and ``service.ray_app`` run these
pieces on a Ray cluster, and the tests also run them in one process.
"""
