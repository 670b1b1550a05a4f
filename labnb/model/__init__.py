"""The task model: the ``@task`` decorator and parameter rules, the canonical
encoding behind ids, and result formats. Nothing else computes ids.
"""
