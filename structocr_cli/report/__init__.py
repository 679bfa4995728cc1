"""Everything that prints a balance: the terminal report, the machine formats and their
registry, the many-key tables, GitHub Actions annotations, fields, errors and JSON."""
