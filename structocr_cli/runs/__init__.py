"""What the commands do once their options are parsed: the runs of ``balance`` (one key,
several, a watch) and the exporter's, over the core. No typer here."""
