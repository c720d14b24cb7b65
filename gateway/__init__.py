"""An API gateway on async Django: fan-out, shaping and merging of upstream JSON."""
