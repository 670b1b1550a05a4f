"""What users see: the anywidget views, the text progress bar, and
whether we run in a kernel.
"""
