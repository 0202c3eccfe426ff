"""Audio work: synthesis engines, word timing, stitching and caption export.

``renderer`` may import ``ssml`` and ``narrate`` (errors, settings) but never ``jobs``.
"""
