"""What runs inside a task: output capture, ``labnb.progress``, ``labnb.log_*``
and mlflow forwarding.
"""
