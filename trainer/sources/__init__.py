"""Readers that turn external data into ``trainer.data.RoutingData`` or telemetry records."""
