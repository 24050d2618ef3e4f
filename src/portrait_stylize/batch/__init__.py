"""Batch runs: every photo x painting pair of two folders (or a CSV manifest) as one job.

:mod:`.jobs` expands the inputs into jobs and names their outputs, :mod:`.store` keeps
each job's state in ``OUTDIR/batch.sqlite``, :mod:`.local` runs them in worker
processes and :mod:`.report` shows progress and writes the summary.
"""
