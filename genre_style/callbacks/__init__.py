"""Lightning callbacks of this project (the rest are Lightning's own, chosen in `conf/callbacks/`)."""
