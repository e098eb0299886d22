"""Build: load or export the actor, stitch the two modes, write metadata, retarget, write.

Convention: ``stitch`` makes the file's model; every later build step (``retarget``,
``strip_debug_info``, adding initializers and metadata) changes that model in place and
returns None, so a step can never hand back a copy that the next step forgets to use.
"""
