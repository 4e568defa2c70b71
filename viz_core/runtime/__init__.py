"""Runtime: what a long-running server or command needs around the techniques (cache, workbench, job queue, settings, parameter bounds, warm-up, quiet logs)."""
