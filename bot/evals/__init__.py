"""Evals in depth (SPEC §10): the per-case side of a labelled eval run.

    junit.py    JUnit XML (pytest --junitxml) -> cases, the third labelled format of bot/evalscore.py
    compare.py  pure: flips against the previous labelled run, flaky and always-failing cases
    gate.py     pure: the CI gate verdict of a run against the pilot's bar
    record.py   inside the caller's unit of work: store a run's per-case results and compare them

Storage of the results (one packed row a run) is storage/cases.py.
"""
