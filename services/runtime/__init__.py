"""What every superapp gRPC service shares: errors, validation, settings, health, serving."""
