"""Terminal rendering and the interactive views."""
