import genre_style  # noqa: F401 - first: reproducible math settings before torch loads (genre_style/reproducibility.py)
