"""After training: scores, embedding metrics, plots and reports, written to the run folder (no tracking here)."""
