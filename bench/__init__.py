"""`make bench`: wrk against stub upstreams, results as one table (README, Performance)."""
