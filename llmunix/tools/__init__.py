"""Tools agents call: the built-ins (Read, Write, Edit, Glob, Grep, Bash), tool specs run as
commands or python, their child processes and results. May import trace/ and lower layers."""
