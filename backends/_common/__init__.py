"""Code written once for every namespace: broadcasting checks, dtype tables, and the
standard's functions expressed through other standard functions of any ``xp``."""
