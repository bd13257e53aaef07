"""Sub-commands of the `oneinch` CLI, one typer app per room (parsing only)."""
