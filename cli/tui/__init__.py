"""The full-screen app (Textual): people and rooms in a sidebar, one conversation, an input."""
