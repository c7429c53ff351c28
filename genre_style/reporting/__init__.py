"""`python -m genre_style.report`'s parts: the runs it reads (runs.py), what it says (sections.py), how (render.py)."""
