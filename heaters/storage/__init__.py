"""Object storage: pure key naming and the boto3 adapter."""
