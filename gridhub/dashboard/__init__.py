"""The dashboard at ``/``: one page an operator on duty reads at a glance.

``data.py`` keeps the last hour of the hub's figures and answers
``/api/overview``; ``static/`` holds the page, its script and its style, all
served by the hub itself (no external CDN: the county network may have no
internet).
"""
