"""gridhub: one record per resident and one per unified grid, collected once and used by many."""
