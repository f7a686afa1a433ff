"""Adapters: what chatscope plugs into, a folder per kind; each implements ports of the services."""
