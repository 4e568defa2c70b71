"""Runtime: what a long-running server or command needs around the techniques. Below the
techniques sit the light parts every layer may use (cache, bounds, settings, the job queue,
quiet logs); above them the services that run techniques for the dashboard and the command
line (the workbench, the Compare view's maps, the warm-up).

Modules:
    cache      one bounded, thread-safe cache keyed by content (memory and disk)
    limits     the range of every number a user sets (pure Python, shared with the CLI)
    settings   server settings from the environment: a class server's memory bounds
    jobs       one bounded queue for heavy work, shared fairly by a server's users
    quiet      TensorFlow loaded without its start-up noise
    workbench  the cached front door: models, images and results for pages and commands
    plan       a page's backend calls named once: for the page, the job queue, the cache, the bundle
    compared   the Compare view's maps through a workbench: one cache entry for pages and CLI
    warmup     the demo model's results prepared ahead (presenter mode)
"""
