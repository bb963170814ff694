"""The web layer: the composition root, the FastAPI app, typed dependencies, routes and static pages."""
