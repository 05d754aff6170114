"""Platform-neutral core of pilotbot: rules, commands, services, rendering model."""
