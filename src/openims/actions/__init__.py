"""Action handlers, one module per resource family; each handler is declared with `registry.action`."""
