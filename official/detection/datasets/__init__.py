"""Dataset generators that need no download (the synthetic shapes set of the demo)."""
