"""chatbus's command line: click commands and the terminal UI (imported as chatbus_cli)."""
