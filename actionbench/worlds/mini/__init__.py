"""ActionBench-mini: the offline world (see ``model`` for what it is)."""
