"""The benchmark harness behind ``bench/run``.

Runs each benchmark script as its own process (never in-process shortcuts), measures it from outside
(CPU seconds and peak RSS of the whole process tree from ``wait4``), enriches every JSON result the
script prints with the machine, versions, commit, date and load average, appends the lines to
``bench/results/<name>.jsonl`` and regenerates ``docs/performance.md`` from the latest lines.

Modules: ``specs`` (which scripts, full and quick arguments, goals), ``runner`` (process, rusage,
enrichment), ``page`` (the markdown page), ``plots`` (PNG figures), ``__main__`` (the command line).
"""
