"""Looking at runs: a run's steps, timings, tokens and specs computed from its trace, and one
self-contained HTML page per run plus an index of runs. May import trace/ and lower layers."""
