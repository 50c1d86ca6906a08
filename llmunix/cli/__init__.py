"""The command line: the typer app (main.py; main() is the one place errors become exit codes),
one module per command group, and the terminal views. May import every other package."""
