"""Music style transfer from a trained model's encodings (`python -m genre_style.transfer`), scored by judges that
did not make it. `inversion` turns log-mel maps back into audio, `methods` moves a song toward a style, `scores`
reads the result back from its file with independent models and content-preservation measures."""

EXPERIMENT = "genre-style-transfer"  # the MLflow experiment transfers and their benchmarks log to
