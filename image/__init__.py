"""Building the job's container image (python3 -m image.build) and the stand-in for its base."""
