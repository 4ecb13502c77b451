"""SSL provider adapters. ``base`` holds the interface; each other module is one provider."""
