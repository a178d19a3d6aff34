"""The serving stack: Model, EndpointConfig, Endpoint, their role, alarms and autoscaling."""
