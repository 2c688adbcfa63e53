"""Reference data shipped with Ali: the ISTAT list of Italian comuni."""
