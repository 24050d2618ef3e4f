"""The web app: ``portrait-stylize serve``.

A FastAPI server (:mod:`.app`) in front of a SQLite job store with leases
(:mod:`.store`), worker processes that hold their networks warm and run the jobs
(:mod:`.worker`), the faces, person and instant preview the page shows before a job
(:mod:`.quicklook`), and a plain HTML page (``static/``). :mod:`.server` starts them
together; ``docs/web.md`` describes the job states, the lease and what survives what.
"""
