"""The web app: ``portrait-stylize serve``.

A FastAPI server (:mod:`.app`; every answer modelled in :mod:`.responses`, the token
and the request limits in :mod:`.guard`) in front of a SQLite job store with leases
(:mod:`.store`), worker processes that hold their networks warm and run the jobs
(:mod:`.worker`), the faces, person and instant preview the page shows before a job
(:mod:`.quicklook`) and how long it will take (:mod:`.estimate`), and a plain HTML page
(``static/``). :mod:`.server` starts them together; ``docs/web.md`` describes the job
states, the lease and what survives what.
"""
