"""Viewfinder engine: cross-view localisation of ground photos on satellite maps. Never imports Qt."""
