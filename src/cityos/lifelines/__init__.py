"""Urban lifelines (城市生命线): sensors as OGC SensorThings, their observations, and the alerts
the monitoring rules raise."""
