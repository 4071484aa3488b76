"""The HTTP routes, one module per area; each handler parses, calls the library once, and shapes."""
