"""The command line: the typer app, its one exit funnel, the shared options, the help, and
one module per command group."""
