"""Reporting: runs and table rendering, summary/stats/geometry and paper tables, figures."""
